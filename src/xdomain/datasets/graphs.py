"""TU graph-classification data sets (Morris et al., 2020) through PyG's ``TUDataset``, and the fixed
10-fold protocol of Errica et al. (ICLR 2020) with isomorphic duplicates kept in one fold.

The data home holds the raw TU text files as ``<data home>/TUDataset/<name>/raw/<name>_A.txt, ...`` (the
layout PyG downloads). PyG writes its processed tensors next to ``raw/``; the data home may be read-only
(it is in CI), so :class:`CachedTUDataset` reads ``raw/`` from the data home and writes ``processed/`` into
the user cache (``<cache home>/TUDataset/<name>/processed``). Where the raw files are missing and a
network is reachable they are downloaded from the TU site into the data home (into the cache when the
data home is not writable); offline the error names every file to place and where.

Node labels come one-hot in ``x`` (PyG's encoding), node attributes only with ``use_node_attr=True``,
edge (bond) labels one-hot in ``edge_attr`` with ``use_edge_attr=True``.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from xdomain.datasets.home import DataNotFoundError, cache_home, data_home, offline
from xdomain.registry import DATASETS

TU_URL = "https://www.chrsmrrs.com/graphkerneldatasets"
REQUIRED_FILES = ("A", "graph_indicator", "graph_labels")
OPTIONAL_FILES = ("node_labels", "node_attributes", "edge_labels", "edge_attributes")
# a few of the sets of the TU collection, for the error message (any name of the collection loads)
KNOWN = ("MUTAG", "PROTEINS", "NCI1", "ENZYMES", "PTC_MR", "DD", "IMDB-BINARY", "IMDB-MULTI", "COLLAB")
# MUTAG's atom types, in the order of its node labels (README.txt of the TU set)
MUTAG_ATOMS = ("C", "N", "O", "F", "I", "Cl", "Br")


def _tu_dataset_class() -> Any:
    from torch_geometric.datasets import TUDataset

    class CachedTUDataset(TUDataset):  # torch_geometric ships no stubs: TUDataset is Any
        """PyG's ``TUDataset`` with ``raw/`` where the files are and ``processed/`` in a cache folder."""

        def __init__(self, raw: str, processed: str, name: str, **kwargs: Any) -> None:
            self._raw, self._processed = raw, processed
            super().__init__(processed, name, **kwargs)

        @property
        def raw_dir(self) -> str:
            return self._raw

        @property
        def processed_dir(self) -> str:
            return self._processed

    return CachedTUDataset


def tu_raw_files(name: str) -> list[str]:
    """The raw files a TU set needs (the optional ones are read where present)."""
    return [f"{name}_{part}.txt" for part in REQUIRED_FILES]


def _writable(folder: Path) -> bool:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    return os.access(probe, os.W_OK)


def _download(name: str, raw: Path) -> None:
    from torch_geometric.io import fs

    raw.mkdir(parents=True, exist_ok=True)
    try:
        fs.cp(f"{TU_URL}/{name}.zip", str(raw), extract=True)
    except Exception as err:
        raise DataNotFoundError(
            f"TU data set {name!r} is not in {raw} and the download of {TU_URL}/{name}.zip failed ({err}); "
            f"expected one of the TU collection's names (e.g. {', '.join(KNOWN)}), or place the files "
            f"{', '.join(tu_raw_files(name))} there by hand"
        ) from err
    inner = raw / name
    if inner.is_dir():
        for f in inner.iterdir():
            shutil.move(str(f), raw / f.name)
        inner.rmdir()


@DATASETS.register("tu")
def load_tu(
    name: str,
    home: str | os.PathLike[str] | None = None,
    cache: str | os.PathLike[str] | None = None,
    download: bool = True,
    use_node_attr: bool = False,
    use_edge_attr: bool = False,
) -> Any:
    """The TU set ``name`` as a PyG ``TUDataset`` (``ds[i]`` a ``Data`` with ``x``, ``edge_index``, ``y``).

    Args:
        name: the TU name (``MUTAG``, ``PROTEINS``, ``NCI1``, ``ENZYMES``, ...), spelled as the TU site does.
        home: the data home (default ``$XDOMAIN_DATA_HOME``); raw files are read from
            ``<home>/TUDataset/<name>/raw``.
        cache: where PyG's ``processed/`` goes (default ``<cache home>/TUDataset/<name>/processed``);
            never the data home.
        download: fetch missing raw files from the TU site when a network is reachable.
        use_node_attr: keep the continuous node attributes in ``x`` (after the one-hot labels).
        use_edge_attr: keep ``edge_attr`` (one-hot edge labels, then attributes).
    """
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ValueError(f"TU data set name must be a plain name such as 'MUTAG', got {name!r}")
    raw = data_home(home) / "TUDataset" / name / "raw"
    missing = [f for f in tu_raw_files(name) if not (raw / f).is_file()]
    if missing:
        if not download or offline():
            why = "downloads are off" if not download else "offline (XDOMAIN_OFFLINE / HF_HUB_OFFLINE set)"
            raise DataNotFoundError(
                f"TU data set {name!r} not found: expected the files {', '.join(tu_raw_files(name))} "
                f"(and where the set has them {', '.join(f'{name}_{p}.txt' for p in OPTIONAL_FILES)}) in "
                f"{raw} (data home {data_home(home)}; set XDOMAIN_DATA_HOME to change it); missing "
                f"{missing}. {why}; get them from {TU_URL}/{name}.zip (TU names: e.g. {', '.join(KNOWN)})"
            )
        if not _writable(raw):
            raw = cache_home() / "TUDataset" / name / "raw"
        if [f for f in tu_raw_files(name) if not (raw / f).is_file()]:
            _download(name, raw)
    processed = Path(cache) if cache is not None else cache_home() / "TUDataset" / name / "processed"
    processed.mkdir(parents=True, exist_ok=True)
    cls = _tu_dataset_class()
    return cls(str(raw), str(processed), name, use_node_attr=use_node_attr, use_edge_attr=use_edge_attr)


# -- the protocol's folds ---------------------------------------------------------------------------------
def _networkx(data: Any) -> Any:
    import networkx as nx  # type: ignore[import-untyped]

    n = int(data.num_nodes)
    g = nx.Graph()
    labels = data.x.argmax(1).tolist() if getattr(data, "x", None) is not None else [0] * n
    for v in range(n):
        g.add_node(v, label=int(labels[v]))
    ei = data.edge_index.tolist()
    g.add_edges_from((int(a), int(b)) for a, b in zip(ei[0], ei[1], strict=True) if a != b)
    return g


def isomorphism_groups(graphs: Any) -> np.ndarray:
    """One group id per graph: graphs isomorphic to each other (node labels kept, edge labels ignored,
    as the argmax of ``x``) share an id. Candidates are bucketed by a WL hash, then checked exactly."""
    import networkx as nx

    nxg = [_networkx(g) for g in graphs]
    buckets: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(nxg):
        buckets[nx.weisfeiler_lehman_graph_hash(g, node_attr="label", iterations=4)].append(i)
    group = np.arange(len(nxg))
    match = nx.algorithms.isomorphism.categorical_node_match("label", None)
    for members in buckets.values():
        reps: list[int] = []
        for i in members:
            for r in reps:
                if nx.is_isomorphic(nxg[r], nxg[i], node_match=match):
                    group[i] = group[r]
                    break
            else:
                reps.append(i)
    return group


def graph_folds(
    graphs: Any, y: Any, n_folds: int = 10, seed: int = 0, isomorphic_together: bool = True
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Errica et al.'s outer folds: ``n_folds`` stratified ``(train, test)`` index pairs, every graph in
    exactly one test fold, isomorphic duplicates (:func:`isomorphism_groups`) never split across folds
    (scikit-learn's ``StratifiedGroupKFold``, shuffled with ``seed``: fixed for a given data set)."""
    labels = np.asarray(y).reshape(-1)
    if len(labels) != len(graphs):
        raise ValueError(f"got {len(graphs)} graphs but {len(labels)} labels; expected one label per graph")
    groups = isomorphism_groups(graphs) if isomorphic_together else np.arange(len(labels))
    cv = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [(np.sort(tr), np.sort(te)) for tr, te in cv.split(np.zeros(len(labels)), labels, groups)]


__all__ = ["KNOWN", "MUTAG_ATOMS", "TU_URL", "graph_folds", "isomorphism_groups", "load_tu", "tu_raw_files"]

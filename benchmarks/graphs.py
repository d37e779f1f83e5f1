"""TU graph classification through a frozen language model, under Errica et al.'s fair 10-fold protocol.

Protocol (Errica, Podda, Bacciu & Micheli, ICLR 2020), one run, the same fixed folds for every model:

1. Outer folds: 10 stratified folds (``xdomain.datasets.graphs.graph_folds``, seed 0), isomorphic duplicates
   (node labels kept, edge labels ignored) never split across folds; the fold indices are written into
   the JSON record.
2. Choice of the input transformation, once (not per test fold): every candidate is fitted on an inner
   training cut (80%, stratified, seed 0) of the training part of the first ``--select-folds`` outer folds
   and scored on the inner validation cut (20%); the candidate with the best mean inner-validation
   accuracy is chosen (ties: fewer trainable parameters). No test fold is read in this step.
3. Each outer fold: every model is trained on the training part, its epoch (neural models) or its small
   grid (kernel / MLP baselines) chosen on a validation holdout inside that training part, and the test
   fold is read once. Mean and standard deviation of the test accuracy over the folds are reported.

Models: the reprogrammed frozen LM with the chosen transformation (also scored with every test graph's
nodes shuffled, to show the role of node order); the same transformation with the backbone removed; GIN
trained from scratch (PyG ``GIN``, sum pooling); the WL subtree kernel with a linear SVM (PyG ``WLConv``
features; iterations 1-5 and C by 5-fold CV on the training part); the structure-agnostic baseline (node
features summed, an MLP; its L2 penalty by 5-fold CV on the training part).

Per model: mean/std accuracy, trainable parameters, seconds per fold (fit + predict) and graphs per second
at inference. Writes ``benchmarks/results/graphs.{md,json,png}`` through ``xdomain.reporting``::

    python benchmarks/graphs.py --dataset MUTAG
    python benchmarks/graphs.py --folds 2 --epochs 3 --choose node-tokens --out /tmp/graphs  # CI smoke
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from xdomain.datasets.graphs import MUTAG_ATOMS, graph_folds, isomorphism_groups, load_tu
from xdomain.estimators.graphs import GraphClassifier, WLSubtreeSVM
from xdomain.reporting import write_results

COMMAND = " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])  # recorded in the results JSON

# name -> GraphClassifier settings of each candidate input transformation
CANDIDATES: dict[str, dict[str, Any]] = {
    "node-tokens": {"encoder": "node-tokens", "connectivity": "adjacency"},
    "node-tokens-2hop": {"encoder": "node-tokens", "connectivity": "2-hop"},
    "node-tokens-full": {"encoder": "node-tokens", "connectivity": "full"},
    "gin-prefix": {"encoder": "gin-prefix"},
    "text": {"encoder": "text"},
    "text-label-mapping": {"encoder": "text", "head": "label-mapping"},
}
# the settings a reused selection must share with this run
SELECTION_KEYS = (
    "dataset",
    "backbone",
    "select_folds",
    "candidates",
    "epochs",
    "patience",
    "lr",
    "batch_size",
    "precision",
    "seed",
)
PUBLISHED = {"MUTAG": "GIN-0 89.4 +- 5.6 (test-fold selection, Xu et al. 2019); WL subtree 90.4 +- 5.7"}


# -- baselines ---------------------------------------------------------------------------------------------
class GINBaseline:
    """GIN from scratch (PyG ``GIN``, 3 layers of 64, sum pooling of every layer, a linear read-out), Adam
    at 0.01; the best epoch on a stratified 10% validation cut of the training part."""

    def __init__(self, epochs: int = 200, patience: int = 50, seed: int = 0) -> None:
        self.epochs, self.patience, self.seed = epochs, patience, seed

    def _model(self, in_features: int, n_classes: int) -> torch.nn.Module:
        from torch_geometric.nn import GIN, global_add_pool

        class Net(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.gin = GIN(in_features, 64, num_layers=3, jk="cat")
                self.out = torch.nn.Linear(self.gin.out_channels, n_classes)

            def forward(self, batch: Any) -> torch.Tensor:
                h = self.gin(batch.x, batch.edge_index)
                return self.out(global_add_pool(h, batch.batch))  # type: ignore[no-any-return]

        return Net()

    def fit(self, graphs: list[Any], y: np.ndarray) -> GINBaseline:
        from torch_geometric.loader import DataLoader

        torch.manual_seed(self.seed)
        self.classes_, yi = np.unique(y, return_inverse=True)
        data = [g.clone() for g in graphs]
        for g, t in zip(data, yi, strict=True):
            g.y = torch.tensor([int(t)])
        tr, va = train_test_split(np.arange(len(data)), test_size=0.1, stratify=yi, random_state=self.seed)
        self.model = self._model(int(data[0].x.shape[1]), len(self.classes_))
        opt = torch.optim.Adam(self.model.parameters(), lr=0.01)
        gen = torch.Generator().manual_seed(self.seed)
        loader = DataLoader([data[i] for i in tr], batch_size=32, shuffle=True, generator=gen)
        val = next(iter(DataLoader([data[i] for i in va], batch_size=len(va))))
        best, best_state, waited = -1.0, None, 0
        for _ in range(self.epochs):
            self.model.train()
            for batch in loader:
                opt.zero_grad()
                torch.nn.functional.cross_entropy(self.model(batch), batch.y).backward()
                opt.step()
            self.model.eval()
            with torch.no_grad():
                out = self.model(val)
                acc = float((out.argmax(1) == val.y).float().mean())
                score = acc - 1e-3 * float(torch.nn.functional.cross_entropy(out, val.y))  # ties: lower loss
            if score > best:
                best, waited = score, 0
                best_state = {k: v.clone() for k, v in self.model.state_dict().items()}
            else:
                waited += 1
                if waited >= self.patience:
                    break
        assert best_state is not None
        self.model.load_state_dict(best_state)
        self.model.eval()
        return self

    def predict(self, graphs: list[Any]) -> np.ndarray:
        from torch_geometric.loader import DataLoader

        with torch.no_grad():
            out = torch.cat([self.model(b).argmax(1) for b in DataLoader(graphs, batch_size=256)])
        return np.asarray(self.classes_[out.numpy()])

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


class SumMLP:
    """The structure-agnostic baseline of Errica et al.: each graph's node features summed, then an MLP
    (one hidden layer of 64); its L2 penalty chosen by 5-fold CV on the training part."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    @staticmethod
    def features(graphs: list[Any]) -> np.ndarray:
        return np.stack([g.x.sum(0).numpy() for g in graphs])

    def fit(self, graphs: list[Any], y: np.ndarray) -> SumMLP:
        f = self.features(graphs)
        cv = StratifiedKFold(5, shuffle=True, random_state=self.seed)
        best = None
        for alpha in (1e-4, 1e-2, 1.0):
            model = make_pipeline(
                StandardScaler(), MLPClassifier((64,), alpha=alpha, max_iter=2000, random_state=self.seed)
            )
            s = float(cross_val_score(model, f, y, cv=cv).mean())
            if best is None or s > best[0]:
                best = (s, alpha)
        assert best is not None
        self.alpha_ = best[1]
        self.model = make_pipeline(
            StandardScaler(), MLPClassifier((64,), alpha=self.alpha_, max_iter=2000, random_state=self.seed)
        ).fit(f, y)
        return self

    def predict(self, graphs: list[Any]) -> np.ndarray:
        return np.asarray(self.model.predict(self.features(graphs)))

    def num_parameters(self) -> int:
        mlp = self.model[-1]
        return int(sum(w.size for w in mlp.coefs_) + sum(b.size for b in mlp.intercepts_))


# -- the protocol --------------------------------------------------------------------------------------------
def graph_classifier(args: argparse.Namespace, names: Any, **kw: Any) -> GraphClassifier:
    return GraphClassifier(
        backbone=args.backbone,
        epochs=args.epochs,
        patience=args.patience,
        lr=args.lr,
        batch_size=args.batch_size,
        random_state=args.seed,
        node_names=names,
        mixed_precision=args.precision,
        **kw,
    )


def choose(
    graphs: list[Any], y: np.ndarray, folds: list[Any], args: argparse.Namespace, names: Any
) -> tuple[str, dict[str, Any]]:
    """The candidate with the best mean inner-validation accuracy on the first outer folds' training parts."""
    record: dict[str, Any] = {"candidates": {}, "select_folds": args.select_folds}
    for name in args.candidates:
        accs, seconds = [], []
        for k in range(args.select_folds):
            train = folds[k][0]
            inner, val = train_test_split(train, test_size=0.2, stratify=y[train], random_state=args.seed)
            t = time.perf_counter()
            clf = graph_classifier(args, names, **CANDIDATES[name]).fit([graphs[i] for i in inner], y[inner])
            accs.append(float(clf.score([graphs[i] for i in val], y[val])))
            seconds.append(time.perf_counter() - t)
            print(
                f"[select] {name} fold {k}: inner-validation accuracy {accs[-1]:.4f} ({seconds[-1]:.0f} s)",
                flush=True,
            )
        record["candidates"][name] = {
            "inner_val_accuracy": accs,
            "mean": float(np.mean(accs)),
            "trainable": int(clf.num_trainable()),
            "seconds": seconds,
        }
    chosen = max(
        args.candidates,
        key=lambda n: (record["candidates"][n]["mean"], -record["candidates"][n]["trainable"]),
    )
    record["chosen"] = chosen
    return chosen, record


def selection_lines(selection: dict[str, Any], chosen: str) -> list[str]:
    if selection.get("given"):
        return [f"- given on the command line: {chosen} (no selection run)"]
    lines = []
    for name, c in selection["candidates"].items():
        lines.append(
            f"- {name}: inner-validation accuracy {100 * c['mean']:.1f}% (outer folds' training parts "
            f"{', '.join(f'{100 * a:.1f}' for a in c['inner_val_accuracy'])}; {c['trainable']:,} "
            f"trainable; {sum(c['seconds']):.0f} s)"
        )
    lines.append(
        f"- chosen: **{chosen}**" + (f" (read from {selection['from']})" if "from" in selection else "")
    )
    return lines


def run(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    torch.set_num_threads(args.threads)
    ds = load_tu(args.dataset)
    graphs = [ds[i] for i in range(len(ds))]
    y = ds.y.numpy()
    names = list(MUTAG_ATOMS) if args.dataset == "MUTAG" else None
    folds = graph_folds(graphs, y, seed=0)[: args.folds]
    groups = isomorphism_groups(graphs)
    if args.choose:
        chosen, selection = args.choose, {"chosen": args.choose, "given": True}
    elif args.selection_from:
        with open(args.selection_from) as f:
            earlier = json.load(f)
        mismatch = {
            k: (earlier["settings"][k], getattr(args, k))
            for k in SELECTION_KEYS
            if earlier["settings"][k] != getattr(args, k)
        }
        if mismatch:
            raise SystemExit(f"{args.selection_from} was made with other settings (earlier, now): {mismatch}")
        chosen, selection = (
            earlier["selection"]["chosen"],
            {**earlier["selection"], "from": args.selection_from},
        )
    else:
        chosen, selection = choose(graphs, y, graph_folds(graphs, y, seed=0), args, names)
    print(f"[select] chosen: {chosen}", flush=True)
    if args.select_only:
        lines = [f"# {args.dataset}: choice of the input transformation (inner validation only)", ""]
        lines += selection_lines(selection, chosen)
        return "\n".join(lines), {"dataset": args.dataset, "command": COMMAND, "settings": vars(args),
                                  "selection": selection}
    models: dict[str, Any] = {
        f"reprogrammed {args.backbone} ({chosen})": lambda: graph_classifier(
            args, names, **CANDIDATES[chosen]
        ),
        f"{chosen}, backbone removed": lambda: graph_classifier(
            args, names, no_backbone=True, **CANDIDATES[chosen]
        ),
        "GIN from scratch (PyG)": lambda: GINBaseline(seed=args.seed),
        "WL subtree + linear SVM": lambda: WLSubtreeSVM(random_state=args.seed),
        "sum of node features + MLP": lambda: SumMLP(seed=args.seed),
    }
    if "text" in CANDIDATES[chosen].get("encoder", "") and "label-mapping" == CANDIDATES[chosen].get("head"):
        del models[f"{chosen}, backbone removed"]  # no vocabulary without the LM
    skip = set(args.skip)
    rows: dict[str, dict[str, Any]] = {
        m: {"accuracy": [], "seconds": [], "predict_seconds": [], "n_test": [], "trainable": None}
        for m in models
        if not any(s in m for s in skip)
    }
    shuffled: list[float] = []

    def build(done: int) -> tuple[str, dict[str, Any]]:
        """The table and record of the folds done so far (written after every fold)."""
        table = [
            f"# {args.dataset}: graph classification, Errica et al.'s protocol "
            f"({done} of {len(folds)} outer folds done)",
            "",
            "| model | accuracy % (mean +- std) | trainable parameters | seconds per fold "
            "| graphs/s inference |",
            "|---|---|---|---|---|",
        ]
        summary = {}
        for name, r in rows.items():
            acc = 100 * np.asarray(r["accuracy"])
            gps = sum(r["n_test"]) / max(sum(r["predict_seconds"]), 1e-9)
            summary[name] = {
                "mean": float(acc.mean()),
                "std": float(acc.std()),
                "gps": gps,
                "seconds": float(np.mean(r["seconds"])),
            }
            table.append(
                f"| {name} | {acc.mean():.1f} +- {acc.std():.1f} | {r['trainable']:,} | "
                f"{np.mean(r['seconds']):.1f} | {gps:.0f} |"
            )
        if shuffled:
            s = 100 * np.asarray(shuffled)
            table.append(
                f"| reprogrammed, test nodes shuffled (same models) | {s.mean():.1f} +- {s.std():.1f} | "
                "- | - | - |"
            )
        table += ["", "Choice of the input transformation (inner validation on training parts only):", ""]
        table += selection_lines(selection, chosen)
        table += [
            "",
            f"Settings: backbone {args.backbone}, epochs {args.epochs}, patience {args.patience}, lr "
            f"{args.lr}, batch {args.batch_size}, precision {args.precision}, seed {args.seed}; "
            f"{len(graphs) - len(set(groups.tolist()))} isomorphic duplicates kept in one fold.",
            f"Published (not this protocol): {PUBLISHED.get(args.dataset, '-')}.",
        ]
        record = {
            "dataset": args.dataset,
            "protocol": "Errica et al. 2020, outer stratified folds, inner holdout",
            "command": COMMAND,
            "settings": vars(args),
            "folds": [{"train": tr.tolist(), "test": te.tolist()} for tr, te in folds],
            "selection": selection,
            "results": rows,
            "summary": summary,
            "shuffled_node_order": shuffled,
        }
        return "\n".join(table), record

    for k, (tr, te) in enumerate(tqdm(folds, desc="outer folds")):
        gtr, gte = [graphs[i] for i in tr], [graphs[i] for i in te]
        for name, make in models.items():
            if name not in rows:
                continue
            t = time.perf_counter()
            model = make().fit(gtr, y[tr])
            t_fit = time.perf_counter() - t
            t = time.perf_counter()
            pred = np.asarray(model.predict(gte))
            t_pred = time.perf_counter() - t
            acc = float((pred == y[te]).mean())
            r = rows[name]
            r["accuracy"].append(acc)
            r["seconds"].append(t_fit + t_pred)
            r["predict_seconds"].append(t_pred)
            r["n_test"].append(len(te))
            r["trainable"] = int(
                model.num_trainable() if hasattr(model, "num_trainable") else model.num_parameters()
            )
            if name.startswith("reprogrammed"):
                p = model.predict_proba_permuted(gte, seed=k)
                shuffled.append(float((model.classes_[p.argmax(1)] == y[te]).mean()))
                r.setdefault("history", []).append(
                    {"epochs": model.history_.epochs, "best_step": model.history_.best_step}
                )
            print(f"[fold {k}] {name}: {acc:.4f} ({t_fit:.0f} s fit)", flush=True)
        if not args.select_only:
            write_results(args.out, *build(k + 1))  # what is done so far survives an interruption
    return build(len(folds))


def plot(summary: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.barh(names, [summary[n]["mean"] for n in names], xerr=[summary[n]["std"] for n in names], color="C0")
    ax.set_xlabel("10-fold test accuracy % (mean +- std)")
    ax.set_xlim(50, 100)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="MUTAG")
    p.add_argument("--backbone", default="minilm")
    p.add_argument("--folds", type=int, default=10, help="outer folds to run (CI: 2)")
    p.add_argument("--select-folds", type=int, default=1, help="outer folds whose training parts choose I")
    p.add_argument(
        "--candidates",
        nargs="+",
        default=["node-tokens", "node-tokens-full", "gin-prefix"],
        choices=sorted(CANDIDATES),
    )
    p.add_argument("--choose", default=None, choices=sorted(CANDIDATES), help="skip the selection")
    p.add_argument("--select-only", action="store_true", help="only choose the transformation; write it")
    p.add_argument("--selection-from", default=None, help="the JSON of a --select-only run to reuse")
    p.add_argument("--skip", nargs="*", default=[], help="models to leave out (substring of their name)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--patience", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--precision", default="no", choices=("no", "bf16"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "graphs")
    )
    args = p.parse_args()
    t = time.perf_counter()
    table, record = run(args)
    record["wall_seconds"] = time.perf_counter() - t
    table += f"\n\nWall time of this run: {record['wall_seconds'] / 60:.1f} min."
    print(table)
    write_results(args.out, table, record)
    if not args.select_only:
        plot(record["summary"], args.out + ".png")


if __name__ == "__main__":
    main()

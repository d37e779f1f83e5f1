"""Fit every estimator's default backbone on a tiny real slice (run inside a fresh pip-installed venv).

``tests/test_install_extras.py`` builds a virtual environment the way the README tells a pip user
(``pip install ".[all]"`` and the speaker encoder's one ``--no-deps`` line), then runs this file with it.
Prints one line per estimator and exits non-zero on the first failure.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

torch.set_num_threads(1)


def main() -> int:
    from xdomain import (
        AntibodyInfiller,
        AudioClassifier,
        ProteinClassifier,
        TimeSeriesClassifier,
        TimeSeriesForecaster,
    )
    from xdomain.datasets import load_amp, load_fsdd, load_sabdab_cdr, load_ucr
    from xdomain.datasets.ett import load_ett

    x, y = load_ucr("GunPoint", "train")
    pick = np.r_[np.flatnonzero(y == y[0])[:4], np.flatnonzero(y != y[0])[:4]]
    fast = {"epochs": 1, "max_steps": 1, "validation_fraction": 0.0}
    checks = {
        "TimeSeriesClassifier() [crepe-tiny]": lambda: TimeSeriesClassifier(**fast).fit(x[pick], y[pick])
        .predict(x[pick]),
        "TimeSeriesClassifier(backbone='efficientnet-lite0')": lambda: TimeSeriesClassifier(
            backbone="efficientnet-lite0", **fast).fit(x[pick], y[pick]).predict(x[pick]),
    }
    fsdd = load_fsdd("train")
    labels = np.asarray(fsdd.labels)
    apick = np.r_[np.flatnonzero(labels == labels[0])[:3], np.flatnonzero(labels != labels[0])[:3]]
    paths = [fsdd.paths[i] for i in apick]
    checks["AudioClassifier() [speaker-encoder]"] = lambda: AudioClassifier(**fast).fit(
        paths, labels[apick]).predict(paths)
    seqs, plabels = load_amp("amp_uniprot")
    plabels = np.asarray(plabels)
    ppick = np.r_[np.flatnonzero(plabels == 0)[:4], np.flatnonzero(plabels == 1)[:4]]
    peptides = [seqs[i] for i in ppick]
    checks["ProteinClassifier() [minilm]"] = lambda: ProteinClassifier(**fast).fit(
        peptides, plabels[ppick]).predict(peptides)
    checks["ProteinClassifier(backbone='antiberty')"] = lambda: ProteinClassifier(
        backbone="antiberty", **fast).fit(peptides, plabels[ppick]).predict(peptides)
    chains, masks, _ = load_sabdab_cdr("val")
    checks["AntibodyInfiller() [minilm]"] = lambda: AntibodyInfiller(**fast).fit(
        chains[:4], masks[:4]).infill(chains[0], masks[0], n=2)
    ett = load_ett("ETTh1").iloc[:700, :2]
    checks["TimeSeriesForecaster() [minilm]"] = lambda: TimeSeriesForecaster(
        lookback=96, horizon=24, max_steps=1, progress=False).fit(ett).predict(ett)
    for name, check in checks.items():
        try:
            check()
        except Exception as err:  # report which default failed, then fail
            print(f"FAIL {name}: {type(err).__name__}: {err}")
            return 1
        print(f"ok   {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

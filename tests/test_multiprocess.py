"""Several processes (``torchrun``, gloo on the CPU) train to the same result as one, and two fresh processes
with the same seed give bit-identical results.

``tests/multiprocess_fit.py`` fits a tiny forecaster and one label-mapping classifier per domain (time
series ILM, audio FLM, proteins with R2DL's vocabulary mapping) and writes predictions, validation
histories and a gathered evaluation count. Tolerances: bitwise for the same process layout; 1e-4 between
one and two processes (the gradient all-reduce sums the two halves in another order than one process
does, a float32 rounding difference of about 1e-7 that a few optimiser steps keep small).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from xdomain.training.batches import shard_batch
from xdomain.training.losses import IGNORE_INDEX

SCRIPT = Path(__file__).with_name("multiprocess_fit.py")


def _run(out: Path, processes: int) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [torchrun, "--standalone", f"--nproc_per_node={processes}", str(SCRIPT), str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    data = np.load(out)
    return {k: data[k] for k in data.files}, json.loads(out.with_suffix(".json").read_text())


@pytest.mark.slow
def test_two_processes_train_like_one_and_same_seed_is_bit_identical(tmp_path: Path) -> None:
    one, meta_one = _run(tmp_path / "one.npz", 1)
    again, _ = _run(tmp_path / "again.npz", 1)
    two, meta_two = _run(tmp_path / "two.npz", 2)
    assert meta_one["world"] == 1 and meta_two["world"] == 2
    # same seed, fresh process: bit for bit
    for key in one:
        np.testing.assert_array_equal(one[key], again[key], err_msg=key)
    # two processes, the same global batches: the same model within float32 rounding
    for key in ("forecast", "series", "audio", "protein", "protein_regression", "antibody"):
        np.testing.assert_allclose(two[key], one[key], atol=1e-4, err_msg=key)
    history_one, history_two = meta_one["history"], meta_two["history"]
    assert isinstance(history_one, dict) and isinstance(history_two, dict)
    for key, records in history_one.items():
        got = [r["val_loss"] for r in history_two[key]]
        np.testing.assert_allclose(got, [r["val_loss"] for r in records], rtol=1e-4, err_msg=key)
    # 25 test examples over 2 processes: each counted once, none dropped
    np.testing.assert_array_equal(two["eval_n"], [25, 25])


def test_shard_batch_splits_rows_once_and_counts_the_global_terms() -> None:
    x = torch.arange(10.0).reshape(5, 2)
    y = torch.arange(5)
    parts = [shard_batch(x, y, r, 2, "cross_entropy") for r in range(2)]
    assert torch.equal(torch.cat([p[0] for p in parts]), x)
    assert [p[2] for p in parts] == [5.0, 5.0]
    # one process: the batch untouched
    same = shard_batch(x, y, 0, 1, "mse")
    assert same[0] is x and same[2] == 5.0  # mse: every element of y
    # token labels: the global count of scored positions
    tokens = torch.tensor([[1, IGNORE_INDEX, 2], [IGNORE_INDEX, IGNORE_INDEX, 3]])
    assert shard_batch(x[:2], tokens, 1, 2, "cross_entropy")[2] == 3.0
    # a batch smaller than the world: the idle process gets a row it does not count
    lx, _, terms = shard_batch(x[:1], y[:1], 1, 3, "cross_entropy")
    assert lx.shape[0] == 1 and terms == float("inf")

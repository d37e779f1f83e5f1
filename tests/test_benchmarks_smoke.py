"""Every script in ``benchmarks/`` runs on a tiny budget, and the tables it writes keep their shape.

Each script runs as a subprocess (``sys.executable benchmarks/X.py <tiny flags> --out <tmp>/X``, one thread,
offline, the data home of this test run) and the test reads what it wrote: the markdown tables' header
columns are exactly the expected ones, the JSON has one row per table row with the expected keys, and the
JSON records the command line it was run with. A fast test checks that every committed result in
``benchmarks/results/`` records how it was made.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import ETTH1, require_data
from xdomain.datasets.home import data_home

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
RESULTS = BENCHMARKS / "results"

GUNPOINT = "UCR/GunPoint/GunPoint_TRAIN.ts"
FSDD_FILE = "audio/fsdd/recordings/0_jackson_0.wav"
AMP = "peptides/amp_modlamp/AMPvsUniProt.csv"
AMP_TM = "peptides/amp_modlamp/AMPvsTMset.csv"
DEEPSOL = ("proteins/solubility_deepsol/val_src", "proteins/solubility_deepsol/test_src")
MUTAG = "TUDataset/MUTAG/raw/MUTAG_A.txt"
CREDITCARD = "transactions/creditcard/creditcard_sample.csv"
SABDAB = (
    "antibodies/sabdab_cdr/sabdab_hcdr3_cluster_val.csv",
    "antibodies/sabdab_cdr/sabdab_hcdr3_cluster_test.csv",
    "antibodies/sabdab_cdr/rabd_test.csv",
)


# -- helpers ------------------------------------------------------------------------------------------
def run_script(script: str, args: list[str], out: Path, timeout: float = 300) -> tuple[str, dict[str, Any]]:
    """Run ``benchmarks/<script> <args> --out <out>`` in a fresh interpreter; the markdown and the JSON."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "XDOMAIN_DATA_HOME": str(data_home()),
    }
    argv = [sys.executable, str(BENCHMARKS / script), *args, "--out", str(out)]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(
            f"{shlex.join(argv)} exited with {proc.returncode}\n--- stdout (tail)\n{proc.stdout[-3000:]}"
            f"\n--- stderr (tail)\n{proc.stderr[-3000:]}"
        )
    md, js = Path(f"{out}.md"), Path(f"{out}.json")
    assert md.is_file() and js.is_file(), f"{script} did not write {md} and {js}"
    doc = json.loads(js.read_text())
    assert isinstance(doc, dict), f"{js} holds a {type(doc).__name__}, expected an object"
    return md.read_text(), doc


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def tables(markdown: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every markdown table: (header cells, body rows' cells), in order."""
    lines = markdown.splitlines()
    found = []
    for i, line in enumerate(lines[:-1]):
        if line.startswith("|") and lines[i + 1].startswith("|---"):
            body = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                body.append(cells(row))
            found.append((cells(line), body))
    return found


def assert_tables(markdown: str, expected: list[list[str]]) -> list[list[list[str]]]:
    """The tables' headers are exactly ``expected`` (in order); every body row has as many cells."""
    got = tables(markdown)
    assert [h for h, _ in got] == expected, "markdown table headers changed"
    for header, body in got:
        assert body, f"the table {header} has no rows"
        for row in body:
            assert len(row) == len(header), f"row {row} does not match the header {header}"
    return [body for _, body in got]


def assert_rows(rows: Any, keys: set[str], n: int | None = None, optional: set[str] | None = None) -> None:
    """A non-empty list of objects, each with every key of ``keys`` and nothing beyond ``optional``."""
    optional = optional or set()
    assert isinstance(rows, list) and rows, f"expected a non-empty list of rows, got {rows!r}"
    if n is not None:
        assert len(rows) == n, f"expected {n} rows, got {len(rows)}"
    for row in rows:
        assert keys <= set(row) <= keys | optional, f"row keys {sorted(row)}; expected {sorted(keys)}"


def assert_command(doc: dict[str, Any], script: str, args: list[str], out: Path) -> None:
    """The JSON's ``command`` names the script and every flag it was run with."""
    command = doc.get("command")
    assert isinstance(command, str), f"the JSON records no command line (keys {sorted(doc)})"
    tokens = shlex.split(command)
    assert any(t.endswith(script) for t in tokens), f"{command!r} does not name {script}"
    for token in [*args, "--out", str(out)]:
        assert token in tokens, f"{token!r} is missing from the recorded command {command!r}"


# -- forecast_etth1.py ----------------------------------------------------------------------------------
FORECAST_COLUMNS = [
    "model", "test MSE", "test MAE", "MSE / dlinear", "val MSE", "trainable params", "train windows",
    "steps", "epochs", "train s", "s / epoch", "infer windows / s", "peak MB", "added MB", "stopped",
]
RUN_RESULT_KEYS = {
    "model", "dataset", "mse", "mae", "val_mse", "trainable_params", "train_windows", "test_windows",
    "steps", "epochs", "stopped", "train_seconds", "seconds_per_epoch", "infer_windows_per_second",
    "peak_memory_mb", "added_memory_mb",
}
FORECAST_DOC_KEYS = {
    "dataset", "protocol", "lookback", "horizon", "backbone", "train_config", "target_mse", "machine",
    "command",
}


@pytest.mark.slow
def test_forecast_etth1_dlinear_tiny(tmp_path: Path) -> None:
    require_data(ETTH1)
    args = ["--models", "dlinear", "--lookback", "32", "--horizon", "8", "--epochs", "1", "--max-steps", "2",
            "--val-windows", "16", "--no-step-cost", "--threads", "1"]
    out = tmp_path / "forecast"
    md, doc = run_script("forecast_etth1.py", args, out)
    (body,) = assert_tables(md, [FORECAST_COLUMNS])
    assert [r[0] for r in body] == ["dlinear"]
    assert set(doc) == FORECAST_DOC_KEYS | {"model_lr", "results", "complete", "runs"}
    assert doc["complete"] is True and doc["runs"] == 1  # written after every model; complete at the last
    assert_rows(doc["results"], RUN_RESULT_KEYS, n=1)
    assert doc["results"][0]["steps"] == 2 and doc["train_config"]["max_steps"] == 2
    assert_command(doc, "forecast_etth1.py", args, out)


@pytest.mark.slow
def test_forecast_etth1_seeds_tiny(tmp_path: Path) -> None:
    """``--seeds``: a row per seed of each model trained by gradient, the closed form once, and a
    mean ± sample-std table computed from those rows."""
    require_data(ETTH1)
    args = ["--models", "dlinear", "linear", "--lookback", "32", "--horizon", "8", "--epochs", "1",
            "--max-steps", "2", "--val-windows", "16", "--no-step-cost", "--threads", "1",
            "--seeds", "1", "2"]
    out = tmp_path / "seeds"
    md, doc = run_script("forecast_etth1.py", args, out)
    per_run, summary = assert_tables(md, [[*FORECAST_COLUMNS[:3], "MSE / linear", *FORECAST_COLUMNS[4:]],
                                          ["model", "seeds", "test MSE", "test MAE", "val MSE",
                                           "MSE / linear"]])
    assert [r[0] for r in per_run] == ["dlinear (seed 1)", "dlinear (seed 2)", "linear"]
    assert doc["runs"] == 3 and doc["complete"] is True
    mses = [r["mse"] for r in doc["results"][:2]]
    assert mses[0] != mses[1]  # the seed reached the training
    mean = sum(mses) / 2
    sd = abs(mses[0] - mses[1]) / 2 ** 0.5  # the sample std of two values
    assert summary[0][:3] == ["dlinear", "2", f"{mean:.4f} ± {sd:.4f}"]
    assert summary[1][:3] == ["linear", "1", f"{doc['results'][2]['mse']:.4f}"]
    assert summary[0][5] == f"{mean / doc['results'][2]['mse']:.3f}"


@pytest.mark.slow
def test_forecast_etth1_step_cost_tiny(tmp_path: Path) -> None:
    """The step-cost table: the real MiniLM, a batch of 2 short series."""
    require_data(ETTH1)
    args = ["--step-cost-only", "--models", "reprogram", "--lookback", "32", "--horizon", "8",
            "--batch-size", "2", "--threads", "1"]
    out = tmp_path / "step_cost"
    md, doc = run_script("forecast_etth1.py", args, out)
    columns = [
        "series per step", "tokens per series", "patch tokens", "step s", "bare fwd+bwd s (same tokens)",
        "ratio", "bare fwd+bwd s (patch tokens)", "ratio (target <= 1.15)", "infer windows / s",
        "time-llm windows / s", "speed-up (target >= 4)",
    ]
    (body,) = assert_tables(md, [columns])
    assert len(body) == 1
    assert set(doc) == FORECAST_DOC_KEYS | {"step_cost", "step_costs"}
    keys = {
        "tokens_per_series", "patch_tokens", "series_per_step", "step_seconds", "backbone_fwd_bwd_seconds",
        "patches_fwd_bwd_seconds", "ratio", "ratio_to_patch_tokens", "infer_windows_per_second",
        "infer_windows_per_second_time_llm", "infer_speedup_vs_time_llm",
    }
    assert_rows(doc["step_costs"], keys, n=1)
    assert_command(doc, "forecast_etth1.py", args, out)


# -- classify_ucr.py ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_classify_ucr_tiny(tmp_path: Path) -> None:
    """GunPoint, crepe-tiny, two mappings (a 2-fold CV on TRAIN picks one), BAR with one direction."""
    require_data(GUNPOINT)
    args = ["--datasets", "GunPoint", "--backbones", "crepe-tiny", "--mappings", "flm", "linear",
            "--cv-folds", "2", "--epochs", "1", "--max-steps", "2", "--black-box", "--directions", "1",
            "--threads", "1"]
    out = tmp_path / "ucr"
    md, doc = run_script("classify_ucr.py", args, out)
    (body,) = assert_tables(md, [[
        "data set", "model", "backbone", "mapping", "test acc %", "95% CI (bootstrap)", "acc / logreg",
        "V2S paper %", "trainable", "train s", "queries",
    ]])
    models = [
        "logistic regression (raw series)", "same program, no backbone", "linear probe (frozen features)",
        "reprogrammed", "reprogrammed", "xdomain, mapping chosen on validation",
        "reprogrammed, black box (BAR)",
    ]
    assert [r[1] for r in body] == models
    assert [r[3] for r in body[3:5]] == ["flm", "linear"]
    base = {"dataset", "model", "backbone", "mapping", "test_acc", "test_ci95", "n_test", "train_s",
            "trainable"}
    rows = doc["rows"]
    assert_rows(rows, base, n=len(models), optional={"steps", "stopped", "queries", "choice", "val_loss"})
    assert {"steps", "stopped"} <= set(rows[3]) and "choice" in rows[5] and "queries" in rows[6]
    assert rows[5]["choice"]["mapping"] in ("flm", "linear")
    assert_command(doc, "classify_ucr.py", args, out)


# -- classify_audio.py ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_classify_audio_tiny(tmp_path: Path) -> None:
    require_data(FSDD_FILE)
    args = ["--backbones", "speaker-encoder", "--mappings", "linear", "--epochs", "1", "--max-steps", "2",
            "--threads", "1"]
    out = tmp_path / "audio"
    md, doc = run_script("classify_audio.py", args, out)
    (body,) = assert_tables(md, [[
        "model", "backbone", "mapping", "test acc %", "acc / log-mel LR", "trainable", "train s",
    ]])
    assert [r[0] for r in body] == [
        "logistic regression (log-mel mean/std)", "same program, no backbone",
        "linear probe (frozen features)", "reprogrammed (program + frozen model)",
    ]
    keys = {"model", "backbone", "mapping", "test_acc", "train_s", "trainable"}
    assert_rows(doc["rows"], keys, n=len(body))
    assert_command(doc, "classify_audio.py", args, out)


# -- proteins.py ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_proteins_tiny(tmp_path: Path) -> None:
    for rel in (AMP, *DEEPSOL, *SABDAB[:2]):
        require_data(rel)
    args = ["--tasks", "amp", "deepsol", "cdrh3", "--limit", "24", "--epochs", "1", "--max-steps", "2",
            "--batch-size", "8", "--infill-epochs", "1", "--variants", "dense", "--max-length", "64",
            "--deepsol-max-length", "64", "--no-antiberty", "--no-probes", "--threads", "1"]
    out = tmp_path / "proteins"
    md, doc = run_script("proteins.py", args, out)
    classify = ["model", "test acc %", "acc / k-mer", "AUROC", "trainable", "train s"]
    infill = ["model", "recovery %", "recovery / position frequency", "diversity (10 samples)", "residues",
              "trainable", "train s"]
    amp, deepsol, cdrh3 = assert_tables(md, [classify, classify, infill])
    reprogrammed = "reprogrammed MiniLM, dense map + linear head (ReprogBERT theta)"
    assert [r[0] for r in amp] == [r[0] for r in deepsol] == ["k-mer (1-3) logistic regression", reprogrammed]
    assert [r[0] for r in cdrh3] == [
        "position frequency (train split)", "reprogrammed MiniLM (ReprogBERT: theta + gamma)",
    ]
    rows = doc["rows"]
    assert [r["task"] for r in rows] == ["amp", "amp", "deepsol", "deepsol", "cdrh3", "cdrh3"]
    assert_rows(rows[:4], {"task", "model", "accuracy", "auroc", "train_s", "trainable"})
    assert_rows(rows[4:], {"task", "model", "recovery", "diversity", "residues", "train_s", "trainable"})
    assert_command(doc, "proteins.py", args, out)


# -- split_overlap.py -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_split_overlap(tmp_path: Path) -> None:
    """No model and no budget to cut: the whole script (about 30 s on one core) on the data home."""
    for rel in (AMP, AMP_TM, *DEEPSOL, *SABDAB):
        require_data(rel)
    out = tmp_path / "split_overlap"
    md, doc = run_script("split_overlap.py", [], out)
    loaders, splits, groups = assert_tables(md, [
        ["data set", "rows read", "unique", "duplicate rows", "conflicting sequences", "their rows",
         "rows kept by dedup"],
        ["data set", "split", "train rows", "test rows", "train unique", "test unique", "conflicting labels",
         "test rows in train (exact)", "sequences on both sides", "near-identical train-test pairs",
         "test seqs with an identical or near-identical train seq"],
        ["data set", "sequences", "groups", "sequences in groups of 2+", "largest group"],
    ])
    assert_rows(doc["loaders"], {"dataset", "rows", "unique", "duplicates_removed", "conflicting_sequences",
                                 "conflicting_rows", "kept"}, n=len(loaders))
    split_keys = {"dataset", "split", "train_rows", "test_rows", "train_unique", "test_unique",
                  "conflicting_sequences", "test_rows_in_train", "shared_sequences", "near_pairs",
                  "test_sequences_near_train"}
    assert_rows(doc["splits"], split_keys, n=len(splits))
    assert_rows(doc["similarity_groups"], {"dataset", "sequences", "groups", "in_groups_of_2_or_more",
                                           "largest_group"}, n=len(groups))
    assert_command(doc, "split_overlap.py", [], out)


# -- choose_defaults.py ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_choose_defaults_tiny(tmp_path: Path) -> None:
    """Two folds of GunPoint's TRAIN split, one step a fit, two mappings (the layouts are fixed: four)."""
    if not (BENCHMARKS / "choose_defaults.py").is_file():
        pytest.skip("benchmarks/choose_defaults.py does not exist")
    require_data(GUNPOINT)
    args = ["--datasets", "GunPoint", "--folds", "2", "--mappings", "ilm", "flm", "--epochs", "1",
            "--max-steps", "1", "--threads", "1"]
    out = tmp_path / "choose_defaults"
    md, doc = run_script("choose_defaults.py", args, out)
    stage = ["candidate", "GunPoint folds %", "GunPoint mean", "score %", "std over folds"]
    stage_a, stage_b, per_dataset = assert_tables(md, [stage, stage, ["data set", "mapping"]])
    assert len(stage_b) == 2 and [r[0] for r in per_dataset] == ["GunPoint"]
    assert {"argv", "command", "protocol", "fits", "stage_a", "stage_b", "choice"} <= set(doc)
    fit_keys = {"dataset", "fold", "clip_length", "program", "mapping", "acc", "n_train", "n_heldout",
                "seconds", "steps", "stopped"}
    assert_rows(doc["fits"], fit_keys)
    assert len(doc["stage_a"]) == len(stage_a) and len(doc["stage_b"]) == len(stage_b)
    assert set(doc["choice"]) == {"clip_length", "program", "mapping"}
    assert not Path(f"{out}.partial.json").exists()
    assert_command(doc, "choose_defaults.py", args, out)


# -- choose_defaults_domains.py -------------------------------------------------------------------------
DOMAIN_COLUMNS = ["candidate", "folds %", "mean %", "std", "best epoch / epochs run", "status"]


@pytest.mark.slow
@pytest.mark.parametrize(("task", "files", "extra"), [
    ("audio", (FSDD_FILE,), []),
    ("amp", (AMP,), ["--subsample", "40"]),
])
def test_choose_defaults_domains_tiny(
    tmp_path: Path, task: str, files: tuple[str, ...], extra: list[str]
) -> None:
    """Two folds, one step a fit, the first two candidates (and the audio probe reference)."""
    for rel in files:
        require_data(rel)
    args = ["--task", task, "--folds", "2", "--max-steps", "1", "--limit", "2", "--threads", "1", *extra]
    out = tmp_path / f"choose_{task}"
    md, doc = run_script("choose_defaults_domains.py", args, out)
    (rows,) = assert_tables(md, [DOMAIN_COLUMNS])
    assert len(rows) == 2 + (task == "audio")  # two candidates, plus the probe reference for audio
    assert sum(r[-1] == "**chosen**" for r in rows) == 1
    assert doc["chosen"] in doc["eligible"] and doc["chosen_params"] in doc["candidates"]
    assert all(len(v) == 2 for v in doc["fits"].values())  # no racing asked: every fold of every row
    assert_rows([f for v in doc["fits"].values() for f in v],
                {"fold", "acc", "n_train", "n_heldout", "seconds", "steps", "epochs_run", "best_epoch",
                 "stopped"})
    # the chosen one has the highest mean of the eligible, up to the fixed 0.5-point tie band
    assert doc["mean"][doc["chosen"]] >= max(doc["mean"][c] for c in doc["eligible"]) - doc["tie_points"]
    assert_command(doc, "choose_defaults_domains.py", args, out)


# -- device_check.py ------------------------------------------------------------------------------------
DEVICE_COLUMNS = [
    "estimator", "backbone", "device", "precision", "fit s", "predict s", "peak MB", "output",
    "max abs diff vs fp32 fit", "max abs diff vs fp32 predict",
]
DEVICE_ROW_KEYS = {
    "estimator", "backbone", "device", "model_device", "precision", "fit_s", "predict_s", "peak_mb",
    "output_shape", "output_sum", "output_mean", "output_std", "finite", "max_abs_diff_vs_fp32_fit",
    "max_abs_diff_vs_fp32_predict", "fp32_fit_s",
}
ESTIMATORS = [
    "TimeSeriesForecaster", "TimeSeriesClassifier", "AudioClassifier", "ProteinClassifier",
    "AntibodyInfiller",
]


@pytest.mark.slow
def test_device_check_cpu_bf16_tiny(tmp_path: Path) -> None:
    """Every estimator's fit and predict in bf16 on the CPU (about a minute on one core)."""
    for rel in (ETTH1, GUNPOINT, FSDD_FILE, AMP, *SABDAB[:2]):
        require_data(rel)
    args = ["--device", "cpu", "--precision", "bf16", "--steps", "1", "--n-train", "4", "--n-test", "2",
            "--batch-size", "4", "--threads", "1"]
    out = tmp_path / "device_check"
    md, doc = run_script("device_check.py", args, out)
    (body,) = assert_tables(md, [DEVICE_COLUMNS])
    assert [r[0] for r in body] == ESTIMATORS
    assert {r[2] for r in body} == {"cpu"} and {r[3] for r in body} == {"bf16"}
    assert_rows(doc["rows"], DEVICE_ROW_KEYS, n=len(ESTIMATORS))
    for row in doc["rows"]:
        assert row["finite"], row
        assert row["model_device"] == "cpu" and row["peak_mb"] > 0
        # bf16 is really applied: the same weights predict differently in float32
        assert row["max_abs_diff_vs_fp32_predict"] > 0, row
        assert row["max_abs_diff_vs_fp32_fit"] >= 0, row
    assert doc["env"]["CUDA_VISIBLE_DEVICES"] == ""
    assert_command(doc, "device_check.py", args, out)


# -- graphs.py -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_graphs_tiny(tmp_path: Path) -> None:
    """Two outer folds of MUTAG, the transformation given (no selection), a few epochs."""
    require_data(MUTAG)
    args = ["--folds", "2", "--epochs", "2", "--patience", "2", "--choose", "node-tokens", "--threads", "1"]
    out = tmp_path / "graphs"
    md, doc = run_script("graphs.py", args, out, timeout=600)
    (body,) = assert_tables(md, [["model", "accuracy % (mean +- std)", "trainable parameters",
                                  "seconds per fold", "graphs/s inference"]])
    models = ["reprogrammed minilm (node-tokens)", "node-tokens, backbone removed", "GIN from scratch (PyG)",
              "WL subtree + linear SVM", "sum of node features + MLP"]
    assert [r[0] for r in body] == [*models, "reprogrammed, test nodes shuffled (same models)"]
    assert list(doc["summary"]) == models and list(doc["results"]) == models
    for name in models:
        folds = doc["results"][name]["accuracy"]
        assert len(folds) == 2, (name, folds)
        assert doc["summary"][name]["mean"] == pytest.approx(100 * sum(folds) / 2)  # percent
    assert len(doc["folds"]) == 2 and Path(f"{out}.png").is_file()
    assert_command(doc, "graphs.py", args, out)


# -- transactions.py ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_transactions_baselines_tiny(tmp_path: Path) -> None:
    """The baseline stage alone (no frozen model): the summary, selection and per-row tables."""
    require_data(CREDITCARD)
    args = ["--order", "baselines", "--bootstrap", "20", "--threads", "1"]
    out = tmp_path / "transactions"
    md, doc = run_script("transactions.py", args, out, timeout=600)
    summary, selection, every = assert_tables(md, [
        ["model", "setting (chosen on validation)", "seeds", "AUPRC", "AUPRC natural", "AUROC",
         "recall @1% FPR", "recall @5% FPR", "F1", "amount caught", "trainable", "train s", "rows/s"],
        ["family", "setting", "validation AUPRC", "seconds"],
        ["model", "AUPRC", "AUPRC (natural 0.17%)", "AUROC", "recall @1% FPR", "recall @5% FPR",
         "F1 @threshold", "fraud amount caught", "trainable", "train s", "rows/s"],
    ])
    families = [r[0] for r in summary]
    assert families[:2] == ["logistic regression (balanced)", "HistGradientBoosting (balanced)"]
    assert all(r[2] == "3" for r in summary) and len(every) == 3 * len(summary)
    chosen = [r[1] for r in selection if r[1].startswith("**chosen")]
    assert len(chosen) == len(summary)  # one choice on validation per family
    assert doc["parts"]["train"]["rows"] == 1033 and doc["split"] == "time 60/20/20"
    assert len(doc["rows"]) == len(every)
    assert_command(doc, "transactions.py", args, out)


# -- committed results ----------------------------------------------------------------------------------
def test_committed_results_record_their_command() -> None:
    """Every ``benchmarks/results/*.json`` says how it was made: a ``command`` string, an ``argv`` list or
    the script's parsed arguments (``args``, or ``settings``: ``vars(args)``, as the first graph results
    recorded them). (``*.partial.json``: the checkpoint of a run in progress, not a result.)"""
    files = sorted(f for f in RESULTS.glob("*.json") if not f.name.endswith(".partial.json"))
    assert files, f"no results in {RESULTS}"
    missing = []
    for path in files:
        doc = json.loads(path.read_text())
        recorded = isinstance(doc, dict) and (
            (isinstance(doc.get("command"), str) and doc["command"].strip() != "")
            or (isinstance(doc.get("argv"), list) and len(doc["argv"]) > 0)
            or (isinstance(doc.get("args"), dict) and len(doc["args"]) > 0)
            or (isinstance(doc.get("settings"), dict) and "out" in doc["settings"])
        )
        if not recorded:
            missing.append(path.name)
    assert not missing, f"results that record no command, argv or args: {missing}"

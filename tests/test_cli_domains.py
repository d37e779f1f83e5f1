"""The command line for classification, proteins and antibodies: help, argument errors, real runs.

Fast runs use real data with a backbone that costs nothing (``none`` for series and audio) or a tiny BERT
with random weights saved as a local model folder (proteins, antibodies); the runs with the real
pretrained backbones are marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import TINY, require_data
from xdomain.checkpoint import is_checkpoint
from xdomain.cli import main

GUNPOINT = "UCR/GunPoint/GunPoint_TRAIN.ts"
FSDD_FILE = "audio/fsdd/recordings/0_jackson_0.wav"
AMP = "peptides/amp_modlamp/AMPvsUniProt.csv"
DEEPSOL = "proteins/solubility_deepsol/val_src"
SABDAB = "antibodies/sabdab_cdr/sabdab_hcdr3_cluster_val.csv"


@pytest.fixture(scope="session")
def tiny_mlm(minilm_tokenizer: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 2-layer BERT (hidden 32) with a masked-LM head and random weights, saved as a local model folder
    with MiniLM's tokenizer: the CLI loads it by path like any transformers model."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_mlm")
    BertForMaskedLM(BertConfig(vocab_size=len(minilm_tokenizer), **TINY)).save_pretrained(folder)
    minilm_tokenizer.save_pretrained(folder)
    return str(folder)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _records(fasta_text: str) -> list[tuple[str, str]]:
    """(id, sequence) of each record of FASTA text (Biopython wraps sequences over several lines)."""
    import io

    from Bio import SeqIO

    return [(r.id, str(r.seq)) for r in SeqIO.parse(io.StringIO(fasta_text), "fasta")]


def _metrics(folder: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((folder / "metrics.json").read_text())
    return doc


def _majority(labels: Any) -> float:
    """The accuracy of always answering the most frequent class of ``labels``."""
    return float(np.unique(np.asarray(labels), return_counts=True)[1].max() / len(labels))


def _majority_of_counts(counts: dict[str, int]) -> float:
    """The same, from a metrics.json ``class_counts`` entry (label -> count)."""
    return max(counts.values()) / sum(counts.values())


# -- help ------------------------------------------------------------------------------------------------
def test_top_level_help_lists_the_domain_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "{forecast,classify,protein,antibody,graph,transactions,bench}" in out


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (["classify"], ["--dataset", "--mapping", "--program", "--limit", "--no-baseline", "blm+"]),
        (["protein", "classify"], ["--fasta", "--labels", "--sparsity", "--too-long", "proteins/deepsol"]),
        (["antibody", "train"], ["--region", "--test-split", "--samples", "--max-steps", "--out"]),
        (["antibody", "infill"], ["--model", "--sequence", "--cdr-mask", "--chains", "--temperature"]),
        (["protein"], ["classify"]),
        (["graph"], ["classify"]),
        (["graph", "classify"], ["--dataset", "--encoder", "--connectivity", "--fold", "--no-backbone"]),
        (["antibody"], ["train", "infill"]),
    ],
)
def test_each_command_has_help(
    command: list[str], options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: xdomain {' '.join(command)} ")
    for option in options:
        assert option in out, option


# -- argument errors: argparse's exit code 2 and a message naming the value --------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["classify", "--dataset", "weather"],
            "argument --dataset: unknown data set 'weather'; expected UCR/<name>",
        ),
        (["classify"], "the following arguments are required: --dataset"),
        (
            ["classify", "--dataset", "UCR/GunPoint", "--max-steps", "0"],
            "argument --max-steps: expected an integer >= 1, got 0",
        ),
        (["classify", "--dataset", "UCR/GunPoint", "--epochs", "two"], "expected an integer >= 1, got 'two'"),
        (
            ["classify", "--dataset", "UCR/GunPoint", "--lr", "-0.1"],
            "argument --lr: expected a number in (0, inf)",
        ),
        (
            ["classify", "--dataset", "UCR/GunPoint", "--validation-fraction", "1"],
            "argument --validation-fraction: expected a number in [0, 1), got 1",
        ),
        (["classify", "--dataset", "UCR/GunPoint", "--mapping", "best"], "invalid choice: 'best'"),
        (["protein", "classify", "--dataset", "proteins/stability"], "invalid choice: 'proteins/stability'"),
        (["graph", "classify", "--dataset", "MUTAG"], "unknown data set 'MUTAG'; expected TUDataset/<name>"),
        (["graph", "classify", "--dataset", "TUDataset/MUTAG", "--encoder", "gcn"], "invalid choice: 'gcn'"),
        (["protein", "classify"], "one of the arguments --dataset --fasta is required"),
        (
            ["protein", "classify", "--dataset", "peptides/amp", "--fasta", "x.fasta"],
            "argument --fasta: not allowed with argument --dataset",
        ),
        (["protein", "classify", "--dataset", "peptides/amp", "--test-size", "1.5"], "(0, 1), got 1.5"),
        (["protein"], "the following arguments are required: action"),
        (["antibody", "train", "--region", "CDR-L3"], "unknown region 'CDR-L3'; expected one of ['CDR-H1'"),
        (["antibody", "infill", "--sequence", "EVQ"], "the following arguments are required: --model"),
        (
            ["antibody", "infill", "--model", "m", "--temperature", "-1"],
            "expected a number in [0, inf), got -1",
        ),
        (["antibody", "infill", "--model", "m", "--n", "0"], "argument --n: expected an integer >= 1, got 0"),
    ],
)
def test_bad_arguments_are_argparse_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: xdomain")
    assert message in err


def test_region_is_case_insensitive_and_canonical() -> None:
    from xdomain.cli import build_parser

    args = build_parser().parse_args(["antibody", "train", "--region", "cdr-h2"])
    assert args.region == "CDR-H2"
    args = build_parser().parse_args(["classify", "--dataset", "ucr/Coffee"])
    assert args.dataset == "UCR/Coffee"


# -- errors found once the command runs: exit code 2 and "xdomain: error: ..." ----------------------------
def test_missing_ucr_set_names_where_it_was_expected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["classify", "--dataset", "UCR/NoSuchSet", "--data-home", str(tmp_path)], capsys)
    assert code == 2
    assert "xdomain: error: UCR data set 'NoSuchSet' not found: expected" in err
    assert str(tmp_path / "UCR" / "NoSuchSet" / "NoSuchSet_TRAIN.ts") in err


def test_program_outside_is_refused_for_audio(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["classify", "--dataset", "audio/fsdd", "--program", "outside"], capsys)
    assert code == 2
    assert "xdomain: error: --program outside places the program around a series" in err


def test_missing_is_refused_for_audio(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["classify", "--dataset", "audio/fsdd", "--missing", "interpolate"], capsys)
    assert code == 2
    assert "xdomain: error: --missing applies to UCR series" in err


def _toy_ucr(home: Path) -> None:
    """A UCR set in the text format (label first): class 'up' rises, class 'down' falls; one value of the
    first training series is missing ('?')."""
    folder = home / "UCR" / "Toy"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("TRAIN", 12), ("TEST", 8)):
        lines = []
        for i in range(n):
            label = "up" if i % 2 == 0 else "down"
            values = np.linspace(0, 1, 16) * (1 if label == "up" else -1) + 0.01 * rng.standard_normal(16)
            text = [f"{v:.4f}" for v in values]
            if split == "TRAIN" and i == 0:
                text[5] = "?"
            lines.append(" ".join([label, *text]))
        (folder / f"Toy_{split}.txt").write_text("\n".join(lines) + "\n")


def test_classify_missing_values_are_an_error_unless_interpolated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _toy_ucr(tmp_path)
    argv = ["classify", "--dataset", "UCR/Toy", "--data-home", str(tmp_path), "--backbone", "none"]
    argv += ["--mapping", "linear", "--max-steps", "1", "--validation-fraction", "0"]
    code, _, err = _run(argv, capsys)
    assert code == 2
    assert "xdomain: error: series 0 has 1 NaN/inf values (first at position 5)" in err
    code, _, err = _run([*argv, "--missing", "interpolate", "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    doc = _metrics(tmp_path / "run")
    assert (doc["n_train"], doc["n_test"], doc["classes"]) == (12, 8, ["down", "up"])
    assert doc["settings"]["missing"] == "interpolate"
    # rising against falling series: the logistic regression on the raw series separates them exactly
    assert doc["results"][1]["accuracy"] == 1.0


def test_out_that_is_a_file_fails_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_data(GUNPOINT)
    taken = tmp_path / "taken"
    taken.write_text("")
    code, _, err = _run(["classify", "--dataset", "UCR/GunPoint", "--out", str(taken)], capsys)
    assert code == 2
    assert f"xdomain: error: --out {str(taken)!r} is a file; expected a folder" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--dataset", "proteins/deepsol", "--test-size", "0.3"],
            "--test-size applies to peptides/amp* and --fasta; DeepSol has an official test file",
        ),
        (["--dataset", "peptides/amp", "--labels", "y.txt"], "--labels goes with --fasta"),
        (["--fasta", "seqs.fasta"], "--fasta needs --labels"),
        (["--fasta", "nowhere.fasta", "--labels", "y.txt"], "sequence file not found: 'nowhere.fasta'"),
    ],
)
def test_protein_source_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["protein", "classify", *argv], capsys)
    assert code == 2
    assert f"xdomain: error: {message}" in err


def _fasta(path: Path, sequences: list[str]) -> Path:
    path.write_text("".join(f">p{i} peptide {i}\n{s}\n" for i, s in enumerate(sequences)))
    return path


def test_labels_must_match_the_fasta(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fasta = _fasta(tmp_path / "seqs.fasta", ["ACDEF", "GHIKL", "MNPQR"])
    short = tmp_path / "labels.txt"
    short.write_text("a\nb\n")
    code, _, err = _run(["protein", "classify", "--fasta", str(fasta), "--labels", str(short)], capsys)
    assert code == 2
    assert f"xdomain: error: {str(short)!r} holds 2 labels for 3 FASTA records" in err
    table = tmp_path / "labels.csv"
    table.write_text("id,label\np0,a\np2,b\n")
    code, _, err = _run(["protein", "classify", "--fasta", str(fasta), "--labels", str(table)], capsys)
    assert code == 2
    assert f"{str(table)!r} has no label for 1 FASTA record(s), first 'p1'" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sequence", "EVQLV"], "give --sequence with --cdr-mask (one chain), or --chains"),
        (["--chains", "designs.fasta"], "--chains 'designs.fasta' is a FASTA file, which holds no CDR masks"),
        (["--chains", "nowhere.csv"], "--chains file not found: 'nowhere.csv'"),
        (["--chains", "c.csv", "--sequence", "EVQ"], "give either --chains or --sequence with --cdr-mask"),
        (["--sequence", "EVQ", "--cdr-mask", "000", "--limit", "2"], "--limit applies to --chains"),
        (["--sequence", "EVQ", "--cdr-mask", "003"], "no checkpoint at"),
    ],
)
def test_infill_input_errors(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["antibody", "infill", "--model", str(tmp_path), *argv], capsys)
    assert code == 2
    assert f"xdomain: error: {message}" in err


# -- real runs on real data, cheap backbones ----------------------------------------------------------
def test_classify_gunpoint_scores_every_test_series_and_saves_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from xdomain import TimeSeriesClassifier
    from xdomain.datasets import load_ucr

    require_data(GUNPOINT)
    out = tmp_path / "run"
    argv = ["classify", "--dataset", "UCR/GunPoint", "--backbone", "none", "--mapping", "linear"]
    code, printed, err = _run([*argv, "--max-steps", "10", "--out", str(out)], capsys)
    assert code == 0, err
    assert printed.startswith("| model | what | test accuracy | trainable parameters | train seconds |")
    assert "| reprogram | none + linear (program full) |" in printed
    doc = _metrics(out)
    assert (doc["dataset"], doc["n_train"], doc["n_test"], doc["classes"]) == (
        "UCR/GunPoint",
        50,
        150,
        ["1", "2"],
    )
    assert doc["settings"]["max_steps"] == 10 and doc["settings"]["backbone"] == "none"
    reprogram, baseline = doc["results"]
    assert (reprogram["steps"], reprogram["stopped"]) == (10, "max steps")
    assert reprogram["train_seconds"] > 0 and baseline["train_seconds"] > 0
    # the saved model is the one scored: it reproduces the accuracy over the whole official TEST split
    x_train, y_train = load_ucr("GunPoint", "train")
    x_test, y_test = load_ucr("GunPoint", "test")
    loaded = TimeSeriesClassifier.load(out / "model")
    assert reprogram["accuracy"] == pytest.approx(float(np.mean(loaded.predict(x_test) == y_test)))
    majority = _majority(y_test)  # 76 of the 150 test series are class 1: 0.507
    assert reprogram["accuracy"] > majority + 0.1  # measured 0.707 after 10 steps
    assert reprogram["trainable_parameters"] == loaded.num_trainable() > 0
    # the baseline is a plain scaled logistic regression on the same series: 150 weights and a bias
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x_train, y_train)
    assert baseline["accuracy"] == pytest.approx(reference.score(x_test, y_test))
    assert baseline["accuracy"] > 0.7  # GunPoint is easy for a linear model on the raw series; measured 0.853
    assert baseline["trainable_parameters"] == 151
    assert (out / "metrics.md").read_text() == printed


def test_classify_limit_takes_a_balanced_seeded_subset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_data(GUNPOINT)
    argv = [
        "classify",
        "--dataset",
        "UCR/GunPoint",
        "--backbone",
        "none",
        "--mapping",
        "linear",
        "--limit",
        "6",
    ]
    runs = []
    for name in ("a", "b"):
        code, _, err = _run(
            [*argv, "--max-steps", "1", "--no-baseline", "--out", str(tmp_path / name)], capsys
        )
        assert code == 0, err
        assert "(--limit 6)" in err
        runs.append(_metrics(tmp_path / name))
    doc = runs[0]
    assert (doc["n_train"], doc["n_test"], doc["limit"], doc["classes"]) == (6, 6, 6, ["1", "2"])
    assert doc["class_counts"] == {"train": {"1": 3, "2": 3}, "test": {"1": 3, "2": 3}}
    assert [r["model"] for r in doc["results"]] == ["reprogram"]
    assert runs[0]["results"][0]["accuracy"] == runs[1]["results"][0]["accuracy"]  # same seed, same run


def test_classify_fsdd_with_the_log_mel_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from xdomain import AudioClassifier

    require_data(FSDD_FILE)
    out = tmp_path / "fsdd"
    argv = ["classify", "--dataset", "audio/fsdd", "--backbone", "none", "--program", "none", "--limit", "30"]
    argv += ["--validation-fraction", "0"]
    code, _, err = _run([*argv, "--max-steps", "20", "--out", str(out)], capsys)
    assert code == 0, err
    doc = _metrics(out)
    assert (doc["n_train"], doc["n_test"], doc["classes"]) == (30, 30, list(range(10)))
    assert doc["estimator"] == "AudioClassifier" and doc["settings"]["mapping"] == "linear"
    reprogram, baseline = doc["results"]
    assert reprogram["trainable_parameters"] == 16000 * 10 + 10  # a linear head on the 1 s, 16 kHz clip
    assert baseline["description"] == "logistic regression on mean and std of 40 log-mel bands"
    assert baseline["trainable_parameters"] == 80 * 10 + 10
    assert doc["class_counts"]["test"] == {str(d): 3 for d in range(10)}  # balanced: the majority is 0.1
    majority = _majority_of_counts(doc["class_counts"]["test"])
    # a linear head on the raw waveform learns little in 20 steps (measured 0.233, 7 of 30 clips); the
    # log-mel statistics make the digits nearly linear (measured 0.867)
    assert reprogram["steps"] == 20 and reprogram["accuracy"] > majority + 0.05
    assert baseline["accuracy"] > majority + 0.5
    assert AudioClassifier.load(out / "model").classes_.tolist() == list(range(10))


def test_protein_classify_amp_with_a_tiny_local_model(
    tiny_mlm: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from xdomain import ProteinClassifier

    require_data(AMP)
    out = tmp_path / "amp"
    argv = ["protein", "classify", "--dataset", "peptides/amp", "--backbone", tiny_mlm, "--limit", "40"]
    # the head the figures below were measured with
    argv += ["--validation-fraction", "0", "--head", "linear"]
    code, printed, err = _run([*argv, "--max-steps", "20", "--out", str(out)], capsys)
    assert code == 0, err
    assert "| baseline | logistic regression on 1..3-mer frequencies |" in printed
    doc = _metrics(out)
    assert (doc["n_train"], doc["n_test"], doc["classes"]) == (40, 40, [0, 1])
    assert doc["class_counts"]["train"] == {"0": 20, "1": 20}
    assert doc["split"] == "stratified amp_split of peptides/amp: test_size 0.2, seed 0"
    reprogram, baseline = doc["results"]
    assert reprogram["steps"] == 20 and reprogram["trainable_parameters"] > 0
    assert baseline["trainable_parameters"] > 20
    assert doc["class_counts"]["test"] == {"0": 20, "1": 20}
    majority = _majority_of_counts(doc["class_counts"]["test"])  # 0.5
    # a random 2-layer BERT: 20 steps of the vocabulary map lift it just above the majority (measured 0.6,
    # 24 of 40); the 1..3-mer logistic regression measured 0.65
    assert reprogram["accuracy"] > majority
    assert baseline["accuracy"] > majority + 0.05
    loaded = ProteinClassifier.load(out / "model")
    assert loaded.predict(["GLFDIVKKVVGALGSL", "MKTAYIAKQR"]).shape == (2,)


def test_protein_classify_deepsol_truncates_and_says_so(
    tiny_mlm: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_data(DEEPSOL)
    out = tmp_path / "deepsol"
    argv = ["protein", "classify", "--dataset", "proteins/deepsol", "--backbone", tiny_mlm, "--limit", "12"]
    code, _, err = _run([*argv, "--max-steps", "1", "--no-baseline", "--out", str(out)], capsys)
    assert code == 0, err
    assert "sequences to their first 256 residues for the reprogrammed model (--too-long truncate)" in err
    doc = _metrics(out)
    assert doc["settings"]["max_length"] == 256 and doc["settings"]["too_long"] == "truncate"
    assert doc["split"].startswith("DeepSol val file (train")
    assert (doc["n_train"], doc["n_test"], len(doc["results"])) == (12, 12, 1)


def test_protein_classify_your_fasta_and_labels(
    tiny_mlm: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from xdomain.datasets import load_amp

    require_data(AMP)
    sequences, labels = load_amp()
    pick = [*np.flatnonzero(labels == 1)[:10], *np.flatnonzero(labels == 0)[:10]]
    fasta = _fasta(tmp_path / "mine.fasta", [sequences[i] for i in pick])
    names = tmp_path / "labels.csv"
    # rows in another order than the FASTA: labels are matched by id
    names.write_text(
        "id,label\n"
        + "".join(f"p{i},{'amp' if labels[j] else 'other'}\n" for i, j in reversed(list(enumerate(pick))))
    )
    argv = ["protein", "classify", "--fasta", str(fasta), "--labels", str(names), "--test-size", "0.5"]
    code, _, err = _run(
        [
            *argv,
            "--backbone",
            tiny_mlm,
            "--max-steps",
            "1",
            "--validation-fraction",
            "0",
            "--out",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert code == 0, err
    doc = _metrics(tmp_path / "o")
    assert (doc["dataset"], doc["n_train"], doc["n_test"]) == (str(fasta), 10, 10)
    assert doc["classes"] == ["amp", "other"]


def test_antibody_train_then_infill(
    tiny_mlm: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from xdomain.baselines.position_frequency import position_frequency_infill
    from xdomain.datasets import load_sabdab_cdr, read_sequences
    from xdomain.estimators.antibodies import AntibodyInfiller

    require_data(SABDAB)
    run = tmp_path / "ab"
    argv = ["antibody", "train", "--backbone", tiny_mlm, "--limit", "8", "--max-steps", "2", "--samples", "3"]
    code, printed, err = _run([*argv, "--out", str(run)], capsys)
    assert code == 0, err
    assert printed.startswith("| model | what | test CDR-H3 recovery |")
    doc = _metrics(run)
    assert (doc["n_train"], doc["n_test"], doc["region"], doc["test_split"]) == (8, 8, "CDR-H3", "test")
    reprogram, baseline = doc["results"]
    chains, masks, _ = load_sabdab_cdr("val")
    test_chains, test_masks, test_ids = load_sabdab_cdr("test")
    # --limit keeps the first chains of each file: the baseline is reproducible by hand
    expected = position_frequency_infill(chains[:8], masks[:8], test_chains[:8], test_masks[:8])
    assert baseline["recovery"] == pytest.approx(expected["recovery"])
    assert reprogram["residues"] == baseline["residues"] == sum(int((m == 3).sum()) for m in test_masks[:8])
    assert reprogram["steps"] == 2 and reprogram["trainable_parameters"] > 0
    assert baseline["trainable_parameters"] is None and "| n/a |" in printed
    # the saved model is the one scored: it reproduces recovery, sampled recovery and diversity (the
    # samples are seeded by the model's random_state)
    scored = AntibodyInfiller.load(run / "model").evaluate(test_chains[:8], test_masks[:8], n=3)
    assert {k: reprogram[k] for k in scored} == pytest.approx(scored)
    # two steps on a random 2-layer BERT stay near a uniform guess of one residue in 20 (measured 0.054);
    # the position-frequency baseline beats that guess (measured 0.170, 19 of 112 residues), and samples
    # at temperature 1 from a near-uniform model differ (measured diversity 0.908)
    assert baseline["recovery"] > 2 / 20
    assert reprogram["diversity"] > 0.5

    # one chain: n designs, the framework kept, only CDR-H3 redesigned, the same seed the same designs
    chain, mask = test_chains[0], test_masks[0]
    mask_text = "".join(str(int(c)) for c in mask)
    designs = tmp_path / "designs.fasta"
    infill = ["antibody", "infill", "--model", str(run), "--sequence", chain, "--cdr-mask", mask_text]
    code, _, err = _run([*infill, "--n", "5", "--temperature", "1.0", "--output", str(designs)], capsys)
    assert code == 0, err
    written = read_sequences(designs)
    assert written.ids == [f"design_{k}" for k in range(1, 6)]
    assert written.descriptions[0] == "region=CDR-H3 temperature=1 source=design"
    framework = mask != 3
    for seq in written.sequences:
        assert len(seq) == len(chain)
        assert np.array_equal(np.array(list(seq))[framework], np.array(list(chain))[framework])
    code, again, _ = _run([*infill, "--n", "5", "--seed", "0"], capsys)
    assert code == 0
    assert [seq for _, seq in _records(again)] == written.sequences
    code, greedy, _ = _run([*infill, "--n", "3", "--temperature", "0"], capsys)
    assert code == 0 and len(_records(greedy)) == 3 and len({seq for _, seq in _records(greedy)}) == 1

    # several chains from a data set, the model given as its model/ folder
    code, out, _ = _run(
        [
            "antibody",
            "infill",
            "--model",
            str(run / "model"),
            "--chains",
            "sabdab/test",
            "--limit",
            "2",
            "--n",
            "2",
        ],
        capsys,
    )
    assert code == 0
    headers = [sid for sid, _ in _records(out)]
    expected_ids = (
        test_ids[:2] if len(set(test_ids[:2])) == 2 else [f"{p}_{i}" for i, p in enumerate(test_ids[:2])]
    )
    assert headers == [f"{name}_{k}" for name in expected_ids for k in (1, 2)]


# -- the real pretrained backbones -----------------------------------------------------------------------
@pytest.mark.slow
def test_classify_gunpoint_with_crepe_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_data(GUNPOINT)
    out = tmp_path / "crepe"
    argv = ["classify", "--dataset", "UCR/GunPoint", "--backbone", "crepe-tiny", "--mapping", "blm"]
    code, _, err = _run([*argv, "--program", "full", "--max-steps", "10", "--out", str(out)], capsys)
    assert code == 0, err
    doc = _metrics(out)
    reprogram, _ = doc["results"]
    assert reprogram["description"] == "crepe-tiny + blm (program full)"
    assert doc["n_test"] == 150 and doc["class_counts"]["test"] == {"1": 76, "2": 74}
    majority = _majority_of_counts(doc["class_counts"]["test"])  # 0.507
    # measured 0.780 with the default 4,096-sample clip (0.573 with the program outside the series)
    assert reprogram["steps"] == 10 and reprogram["accuracy"] > majority + 0.15
    assert is_checkpoint(out / "model")


@pytest.mark.slow
def test_classify_fsdd_with_the_speaker_encoder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_data(FSDD_FILE)
    out = tmp_path / "ge2e"
    code, _, err = _run(
        [
            "classify",
            "--dataset",
            "audio/fsdd",
            "--limit",
            "20",
            "--max-steps",
            "10",
            "--lr",
            "0.01",  # the rate the figures below were measured at (the default is 0.003)
            "--validation-fraction",
            "0",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    doc = _metrics(out)
    reprogram, baseline = doc["results"]
    assert reprogram["description"] == "speaker-encoder + linear (program full)"
    assert doc["class_counts"]["test"] == {str(d): 2 for d in range(10)}
    majority = _majority_of_counts(doc["class_counts"]["test"])  # 0.1
    # measured 0.6 (12 of 20 clips) after 10 steps; the log-mel baseline 0.8
    assert reprogram["steps"] == 10 and reprogram["accuracy"] > majority + 0.3
    assert baseline["accuracy"] > majority + 0.5


@pytest.mark.slow
def test_protein_classify_amp_with_minilm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_data(AMP)
    out = tmp_path / "minilm"
    code, _, err = _run(
        [
            "protein",
            "classify",
            "--dataset",
            "peptides/amp",
            "--limit",
            "60",
            "--max-steps",
            "10",
            "--validation-fraction",
            "0",
            "--lr",
            "0.01",
            "--head",
            "linear",  # the head the figures below were measured with
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    doc = _metrics(out)
    reprogram, baseline = doc["results"]
    assert reprogram["description"] == "minilm, dense vocabulary map, linear head"
    assert doc["class_counts"]["test"] == {"0": 30, "1": 30}
    majority = _majority_of_counts(doc["class_counts"]["test"])  # 0.5
    # measured 0.70 (42 of 60) after 10 steps; the k-mer baseline 0.767
    assert reprogram["steps"] == 10 and reprogram["accuracy"] > majority + 0.1
    assert baseline["accuracy"] > majority + 0.1
    assert (
        reprogram["trainable_parameters"] > 25 * 30522
    )  # the dense map: every amino acid over the vocabulary


@pytest.mark.slow
def test_antibody_train_with_minilm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_data(SABDAB)
    run = tmp_path / "minilm"
    code, _, err = _run(["antibody", "train", "--limit", "8", "--max-steps", "1", "--out", str(run)], capsys)
    assert code == 0, err
    reprogram, baseline = _metrics(run)["results"]
    assert reprogram["description"].startswith("minilm, dense vocabulary map")
    assert reprogram["residues"] == baseline["residues"]
    # beats a uniform guess of one residue in 20 and stays within 0.1 of the position-frequency baseline:
    # measured 0.125 (14 of 112 residues) after 1 step, against 0.170
    assert reprogram["recovery"] > max(1 / 20, baseline["recovery"] - 0.1)


@pytest.mark.slow
@pytest.mark.parametrize("what", ["classify-ucr", "classify-audio", "proteins"])
def test_bench_runs_each_benchmark_script(what: str) -> None:
    """`xdomain bench <what> --help` reaches the benchmark script (it replaces the process)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "import sys; from xdomain.cli import main; sys.exit(main())", "bench", what,
         "--help"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout and "--out" in done.stdout


def test_graph_classify_mutag_fold_with_a_tiny_local_model(
    tiny_mlm: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from xdomain import GraphClassifier

    require_data("TUDataset/MUTAG/raw/MUTAG_A.txt")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # PyG's processed/ goes there
    out = tmp_path / "mutag"
    argv = ["graph", "classify", "--dataset", "TUDataset/MUTAG", "--backbone", tiny_mlm, "--fold", "3"]
    argv += ["--max-steps", "5", "--validation-fraction", "0", "--out", str(out)]
    code, printed, err = _run(argv, capsys)
    assert code == 0, err
    assert "| baseline | WL subtree features (PyG WLConv) + linear SVM" in printed
    doc = _metrics(out)
    assert doc["n_train"] + doc["n_test"] == 188 and 18 <= doc["n_test"] <= 19  # one of the 10 folds
    assert doc["split"].startswith("outer fold 3 of 10")
    reprogram, baseline = doc["results"]
    assert reprogram["steps"] == 5 and reprogram["trainable_parameters"] > 0
    assert 0.0 <= reprogram["accuracy"] <= 1.0
    assert baseline["accuracy"] > _majority_of_counts(doc["class_counts"]["test"])  # WL on MUTAG: ~0.85-0.9
    loaded = GraphClassifier.load(out / "model")
    assert loaded.node_features_ == 7 + 7 + 8


def test_graph_classify_names_a_missing_tu_set(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDOMAIN_OFFLINE", "1")
    argv = ["graph", "classify", "--dataset", "TUDataset/NOPE", "--data-home", str(tmp_path)]
    code, _, err = _run(argv, capsys)
    assert code == 2
    assert "xdomain: error: TU data set 'NOPE' not found: expected the files NOPE_A.txt" in err


# -- transactions --------------------------------------------------------------------------------------------
CREDITCARD = "transactions/creditcard/creditcard_sample.csv"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["transactions", "classify", "--dataset", "creditcard"], "invalid choice: 'creditcard'"),
        (["transactions", "classify", "--dataset", "transactions/creditcard", "--route", "graph"],
         "argument --route: invalid choice: 'graph'"),
        (["transactions", "classify", "--dataset", "transactions/creditcard", "--split", "random"],
         "argument --split: invalid choice: 'random'"),
        (["transactions"], "the following arguments are required: action"),
    ],
)
def test_transactions_bad_arguments(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_transactions_missing_sample_names_where_it_was_expected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["transactions", "classify", "--dataset", "transactions/creditcard",
                         "--data-home", str(tmp_path)], capsys)
    assert code == 2 and "creditcard_sample.csv" in err and str(tmp_path) in err


def test_transactions_classify_writes_metrics_and_curves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real sample, the image route without its backbone (the ablation: no weights to load), a smoke
    budget: the files and their facts, not the benchmark's figures."""
    require_data(CREDITCARD)
    out = tmp_path / "fraud"
    argv = ["transactions", "classify", "--dataset", "transactions/creditcard", "--route", "image",
            "--backbone", "none", "--epochs", "1", "--lr", "1e-5", "--limit", "100", "--bootstrap", "20",
            "--out", str(out)]
    code, stdout, err = _run(argv, capsys)
    assert code == 0, err
    assert "| reprogram |" in stdout and "| baseline |" in stdout
    doc = _metrics(out)
    assert doc["split"] == "time" and doc["rows"] == {"train": 75, "validation": 25, "test": 100}
    assert "NOT the natural 0.17%" in doc["note"]
    for row in doc["results"]:
        assert 0.0 <= row["auprc"] <= 1.0 and len(row["auprc_ci"]) == 2
        assert {"auprc_natural", "auroc", "recall_at_1pct_fpr", "recall_at_5pct_fpr", "fraud_amount_share",
                "trainable_parameters", "train_seconds", "test_rows_per_second"} <= set(row)
    assert (out / "pr.png").stat().st_size > 0 and (out / "roc.png").stat().st_size > 0
    assert is_checkpoint(out / "model")
    assert "AUPRC" in (out / "metrics.md").read_text()

"""The command line: help, a short real run on ETTh1, and errors as exit code 2 with a message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import xdomain
from xdomain.cli import main


def test_help_exits_zero_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: xdomain")
    assert "forecast" in out and "bench" in out


def test_forecast_help_lists_the_models(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["forecast", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--lookback" in out and "--max-steps" in out
    assert "reprogram,time-llm,no-backbone,attention-only,linear,dlinear" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"xdomain {xdomain.__version__}"


def test_unknown_dataset_is_exit_code_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forecast", "--dataset", "weather", "--model", "dlinear", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert (
        "xdomain: error: unknown ETT data set 'weather'; expected one of ['ETTh1', 'ETTh2', 'ETTm1', 'ETTm2']"
        in err
    )


def test_bad_setting_is_exit_code_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forecast", "--model", "dlinear", "--lookback", "0"]) == 2
    assert "xdomain: error: lookback must be a positive integer, got 0" in capsys.readouterr().err


def test_unknown_model_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["forecast", "--model", "arima"])
    assert info.value.code == 2
    assert "invalid choice: 'arima'" in capsys.readouterr().err


def test_forecast_dlinear_on_etth1(
    etth1_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "forecast",
            "--model",
            "dlinear",
            "--lookback",
            "96",
            "--horizon",
            "24",
            "--max-steps",
            "5",
            "--val-windows",
            "50",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.startswith("| model | test MSE |") and "| dlinear |" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "ETTh1"
    (result,) = metrics["results"]
    assert result["model"] == "dlinear" and result["steps"] == 5 and result["stopped"] == "max steps"
    # DLinear starts as the mean of its input window; after 5 steps it must beat that forecast (and
    # repeating the last value) on the same test windows, in the same standardised units
    from numpy.lib.stride_tricks import sliding_window_view

    from xdomain.datasets.ett import ett_splits

    windows = sliding_window_view(ett_splits("ETTh1", 96).test, 96 + 24, axis=0)  # (2857, 7, 120)
    x, y = windows[..., :96], windows[..., 96:]
    assert x.shape[0] * x.shape[1] == result["test_windows"]
    mean_error = y - x.mean(axis=-1, keepdims=True)
    last_mse = float(((y - x[..., -1:]) ** 2).mean())
    # measured: DLinear MSE 0.443, MAE 0.457; window mean 0.680, 0.545; last value 1.222
    assert result["mse"] < 0.8 * float((mean_error**2).mean()) and result["mse"] < 0.8 * last_mse
    assert result["mae"] < float(np.abs(mean_error).mean())
    assert result["test_windows"] == 7 * (2880 - 24 + 1)  # every window of every channel of the test split
    png = (out / "forecast.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    loaded = xdomain.load(out / "dlinear")
    assert (loaded.config.lookback, loaded.config.horizon, loaded.config.model) == (96, 24, "dlinear")
    assert sorted(loaded.scaler_) == sorted(["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"])
    assert loaded.predict_array(np.zeros((2, 96, 7))).shape == (2, 24, 7)
    pred = loaded.predict(xdomain.datasets.load_ett("ETTh1").iloc[:200])
    assert pred.shape == (24, 7) and np.isfinite(pred.to_numpy()).all()


def test_the_makefile_demo_command_parses() -> None:
    """`make demo` is the README's first command: its arguments must stay valid for the CLI."""
    import shlex

    from xdomain.cli import build_parser

    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    command = " ".join(line.strip().rstrip("\\") for line in recipe.splitlines()[1:])
    words = shlex.split(command)
    assert words[0].endswith("bin/xdomain"), words[:2]
    args = build_parser().parse_args(words[1:])
    assert (args.command, args.dataset, args.model) == ("forecast", "ETTh1", "reprogram")
    assert args.backbone == "minilm"
    assert args.lookback == 512 and args.horizon == 96 and "dlinear" in args.compare and args.out

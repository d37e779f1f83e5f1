"""``xdomain classify --backbone vggish``: a clip long enough for VGGish by default, weights from a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers import require_data
from xdomain.cli import main

GUNPOINT = "UCR/GunPoint/GunPoint_TRAIN.ts"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as stop:
        code = int(stop.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_classify_with_vggish_weights_file_and_default_clip(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from xdomain.backbones.speech import VGGishBackbone

    require_data(GUNPOINT)
    # a torchvggish-shaped state dict (random, seeded): the CLI must read it, not fall back to random
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="RANDOM weights"):
        reference = VGGishBackbone()
    weights = tmp_path / "vggish.pth"
    torch.save({k: v.clone() for k, v in reference.state_dict().items()}, weights)
    out = tmp_path / "run"
    argv = ["classify", "--dataset", "UCR/GunPoint", "--backbone", "vggish", "--mapping", "linear",
            "--backbone-weights", str(weights), "--max-steps", "1", "--limit", "10", "--no-baseline",
            "--out", str(out)]
    code, _, err = _run(argv, capsys)
    assert code == 0, err
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["results"][0]["steps"] == 1


def test_vggish_options_are_checked_before_any_data(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["classify", "--dataset", "UCR/GunPoint", "--backbone", "vggish", "--clip-length",
                         "1024", "--out", str(tmp_path / "a")], capsys)
    assert code != 0 and "--clip-length 1024 is too short for vggish" in err and "15600" in err
    code, _, err = _run(["classify", "--dataset", "UCR/GunPoint", "--backbone", "crepe-tiny",
                         "--backbone-weights", "w.pth", "--out", str(tmp_path / "b")], capsys)
    assert code != 0 and "--backbone-weights is for --backbone vggish, got --backbone 'crepe-tiny'" in err

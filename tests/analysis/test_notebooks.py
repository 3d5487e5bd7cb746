"""The notebooks in analysis/ run top to bottom on the venv's python3 kernel and show real results.
The study notebooks read the small study committed under tests/study/fixture_study (LMLAB_STUDY), the
calibration notebook also the scored planned runs under tests/study/fixture_predictions (LMLAB_PREDICTIONS)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "analysis").glob("*.ipynb"))
FIXTURE_STUDY = REPO / "tests" / "study" / "fixture_study"
FIXTURE_PREDICTIONS = REPO / "tests" / "study" / "fixture_predictions"


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
    monkeypatch.setenv("LMLAB_PREDICTIONS", str(FIXTURE_PREDICTIONS))
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
    if path.name == "prediction_calibration.ipynb":
        _check_prediction_calibration("\n".join(texts))


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


def _check_prediction_calibration(text: str) -> None:
    """The notebook's calibration lines are lmlab's calibration of the fixture's scored planned runs and the
    fixture study's held-out runs together: per level, the count inside, the fraction, its binomial interval."""
    import pandas as pd

    from lmlab.runs.predictions import calibration, load_predictions, study_predictions

    table = pd.concat([load_predictions([FIXTURE_PREDICTIONS / "predictions.csv"]), study_predictions(FIXTURE_STUDY)])
    expected = calibration(table)
    assert len(expected) >= 2 and expected["n"].sum() == (table["state"] == "scored").sum()
    assert f"{expected['n'].sum()} of {len(table)} run(s) scored" in text
    shown = re.findall(r"calibration at (\d+)%: (\d+) of (\d+) inside \((\d+)%, 95% binomial interval "
                       r"\[(\d+)%, (\d+)%\]\), (NOT )?consistent", text)
    assert len(shown) == len(expected), text[-2000:]
    for (level, inside, n, fraction, lo, hi, not_), row in zip(shown, expected.itertuples()):
        assert (int(level), int(inside), int(n)) == (round(100 * row.level), row.inside, row.n)
        assert [int(fraction), int(lo), int(hi)] == pytest.approx(
            [100 * row.fraction, 100 * row.ci_lo, 100 * row.ci_hi], abs=0.5 + 1e-9)
        assert (not not_) == row.consistent

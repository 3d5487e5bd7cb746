"""The lm-evaluation-harness adapter (optional extra [lm-eval]): an lmlab run as an lm_eval model, offline."""

from __future__ import annotations

import numpy as np
import pytest

lm_eval = pytest.importorskip("lm_eval", reason="the optional extra is not installed: pip install -e '.[lm-eval]'")

pytestmark = pytest.mark.slow


def test_the_harness_scores_an_lmlab_task_as_lmlab_does(eval_runs, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    from lmlab.eval.config import task_config
    from lmlab.eval.lm_eval_adapter import harness_task
    from lmlab.eval.scoring import score_task
    from lmlab.eval.tasks import build_task, write_jsonl_task
    from lmlab.runs.load import load_model

    model, tok, cfg = load_model(eval_runs.long)
    task = build_task({**task_config("cloze"), "n_examples": 30}, cfg["data"]["dir"])
    write_jsonl_task(task, tmp_path / "cloze.jsonl")
    ours = score_task(model, tok, task)

    out = lm_eval.simple_evaluate(model="lmlab", model_args=f"run_dir={eval_runs.long}",
                                  tasks=[harness_task("lmlab_cloze", tmp_path / "cloze.jsonl")], log_samples=True)
    samples = sorted(out["samples"]["lmlab_cloze"], key=lambda s: s["doc_id"])
    theirs = np.array([[resp[0][0] for resp in s["resps"]] for s in samples])
    np.testing.assert_allclose(theirs, ours.logprob, rtol=1e-5)
    assert out["results"]["lmlab_cloze"]["acc,none"] == pytest.approx((ours.pred == task.labels).mean())
    assert out["results"]["lmlab_cloze"]["acc_norm,none"] == pytest.approx((ours.pred_norm == task.labels).mean())

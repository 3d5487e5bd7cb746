"""Fine-tuning a pretrained tiny run on era classification: a run record of its own, better than the majority."""

from __future__ import annotations

import json

import pytest

from lmlab.eval.finetune import compose_finetune, finetune, main

pytestmark = pytest.mark.slow


def test_a_fine_tuned_classifier_beats_the_majority_class_on_era(eval_runs, tmp_path):
    cfg = compose_finetune([f"pretrained={eval_runs.long}", "task=era", f"runs_dir={tmp_path}", "n_train=600",
                            "n_val=100", "max_epochs=4", "threads=1", "progress_bar=false", "lr=3e-3",
                            "augment.token_dropout=0.05", "scheme.n_boot=200"])
    result = finetune(cfg)
    run_dir = tmp_path / "finetune" / result["run_id"]
    assert result["status"] == "completed" and result["n_test"] == 400
    assert result["accuracy"] > result["majority_baseline"] + 0.05, result
    assert result["f1"] > 0.25  # macro F1 over four eras: more than one class is predicted right
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if "train_loss" in r] == list(range(1, result["epochs"] + 1))
    assert {"val_loss", "val_accuracy"} <= set(rows[-1])
    tasks = json.loads((run_dir / "eval.json").read_text())["tasks"]
    assert tasks["era"]["accuracy"] == result["accuracy"] and tasks["era"]["source"]["split"] == "test"
    for name in ("config.yaml", "env.json", "status.json", "learning_curve.png", "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name
    stamp = (run_dir / "result.json").stat().st_mtime_ns
    assert finetune(cfg) == result and (run_dir / "result.json").stat().st_mtime_ns == stamp  # skipped


def test_fine_tuning_on_a_multiple_choice_task_is_one_error(brief_run, tmp_path, capsys):
    assert main([f"pretrained={brief_run.dir}", "task=cloze", f"runs_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "kind=cloze cannot be fine-tuned on" in err

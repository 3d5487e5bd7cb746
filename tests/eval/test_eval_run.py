"""End to end on the bundled corpus: lmlab-eval on tiny runs, in-loop evaluation, early stopping."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lmlab.errors import ConfigError
from lmlab.eval.__main__ import main
from lmlab.eval.callback import EVAL_CURVE, HOLDOUT, in_loop_task_configs
from lmlab.eval.evaluate import build_tasks, evaluate_model
from lmlab.eval.results import eval_columns
from lmlab.eval.tasks import corpus_eot_id
from lmlab.io import read_jsonl
from lmlab.runs.collect import collect
from lmlab.runs.load import load_model
from tests.eval.conftest import IN_LOOP, train

pytestmark = pytest.mark.slow


def evaluate(run_dir, *overrides) -> dict:
    assert main([f"run={run_dir}", "scheme.n_boot=200", *overrides]) == 0
    return json.loads((run_dir / "eval.json").read_text())["tasks"]


def test_eval_writes_metrics_with_intervals_and_a_longer_run_scores_higher(eval_runs):
    long = evaluate(eval_runs.long, "tasks=[cloze,era]")
    brief = evaluate(eval_runs.brief, "tasks=[cloze]")
    for entry in long.values():
        for key in ("accuracy", "accuracy_pmi", "precision", "recall", "f1", "task_loss"):
            lo, hi = entry[f"{key}_ci"]
            assert lo <= entry[key] <= hi, key  # (a model that always predicts one era has recall 1/4 in every resample)
        assert entry["task_loss_ci"][0] < entry["task_loss_ci"][1]
        assert entry["scheme"]["name"] == "bootstrap" and entry["scheme"]["confidence"] == 0.95
        assert entry["source"]["split"] == "test"
    assert long["era"]["class_names"] == ["before 1861", "1861-1932", "1933-1980", "1981 on"]
    assert sum(c["support"] for c in long["era"]["per_class"].values()) == long["era"]["n_examples"]
    assert long["cloze"]["task_loss"] < brief["cloze"]["task_loss"] - 0.5
    assert long["cloze"]["task_loss_per_char"] < brief["cloze"]["task_loss_per_char"]
    # Raw likelihoods of tiny models rank sentences by how common they are; PMI shows the use of context.
    assert long["cloze"]["accuracy_pmi"] > max(brief["cloze"]["accuracy_pmi"], long["cloze"]["chance"]) + 0.03, \
        (long["cloze"]["accuracy_pmi"], brief["cloze"]["accuracy_pmi"], long["cloze"]["accuracy"], brief["cloze"]["accuracy"])
    columns = eval_columns(eval_runs.long)
    assert columns["eval.cloze.accuracy"] == long["cloze"]["accuracy"]
    assert columns["eval.era.f1_lo"] == long["era"]["f1_ci"][0]
    runs, _ = collect([eval_runs.runs_dir])  # the study table joins them to each run's row
    row = runs.set_index("run_dir").loc[str(eval_runs.long.resolve())]
    assert row["eval.cloze.accuracy_pmi"] == long["cloze"]["accuracy_pmi"] and row["eval.era.task_loss"] > 0


def test_tasks_come_from_held_out_documents_only(eval_runs):
    import pyarrow.parquet as pq

    from lmlab.eval.config import task_config
    from lmlab.eval.corpus import documents
    from lmlab.eval.tasks import build_task

    with pytest.raises(ConfigError, match="expected a held-out split"):
        documents(eval_runs.data_dir, "train")
    index = pq.read_table(eval_runs.data_dir / "documents.parquet").to_pydict()
    split_of = dict(zip(index["id"], index["split"]))
    test_text = "\n".join(d.text for d in documents(eval_runs.data_dir, "test"))
    for name in ("cloze", "era"):
        task = build_task(task_config(name), eval_runs.data_dir)
        assert len(task) == 400 and {split_of[d] for d in task.source["documents"]} == {"test"}
        right = [c[y] for c, y in zip(task.choices, task.labels)] if name == "cloze" else task.prompts
        assert all(text.strip().removesuffix(task_config("era")["prompt_suffix"]) in test_text for text in right)


def test_kfold_scheme_records_each_fold_and_their_spread(eval_runs, tmp_path):
    out = tmp_path / "eval.json"
    assert main([f"run={eval_runs.brief}", "tasks=[cloze]", "scheme.name=kfold", "scheme.k=4", f"output={out}"]) == 0
    entry = json.loads(out.read_text())["tasks"]["cloze"]
    assert len(entry["accuracy_folds"]) == 4 and entry["scheme"]["name"] == "kfold"
    assert entry["accuracy"] == pytest.approx(np.mean(entry["accuracy_folds"]))
    assert entry["accuracy_std"] == pytest.approx(np.std(entry["accuracy_folds"], ddof=1))


def test_in_loop_evaluation_equals_evaluating_the_checkpoint_afterwards(eval_runs):
    rows = read_jsonl(eval_runs.long / EVAL_CURVE)
    steps = [r["step"] for r in rows]
    assert steps == sorted(steps) and len(steps) >= 5
    assert rows[0]["task_loss"] > rows[-1]["task_loss"]  # the curve shows learning
    model, tok, cfg = load_model(eval_runs.long)
    tasks = build_tasks(in_loop_task_configs(IN_LOOP), cfg["data"]["dir"], tok)
    eot = corpus_eot_id(cfg["data"]["dir"], tok)
    after = evaluate_model(model, tok, tasks, HOLDOUT, IN_LOOP["batch_size"], eot)["cloze"]
    last = rows[-1]
    assert last["step"] == json.loads((eval_runs.long / "result.json").read_text())["steps"]
    for key in ("accuracy", "accuracy_norm", "accuracy_pmi", "f1", "task_loss", "task_loss_per_char"):
        assert last[key] == pytest.approx(after[key], rel=1e-6), key


def test_early_stopping_stops_training(data_root, tmp_path):
    from lmlab.eval.overfit import EarlyStopping
    from lmlab.train.callbacks import ValidationMilestones

    stoppers = []

    def stop_early(run, callbacks):
        val = next(c for c in callbacks if isinstance(c, ValidationMilestones))
        stoppers.append(EarlyStopping(lambda: val.last, patience=1, min_delta=100.0))  # no validation improves by 100
        return stoppers

    run = train(data_root, tmp_path, 100 * 16 * 64, stop_early)
    validations = [r["step"] for r in read_jsonl(run.record.metrics_path) if "val_loss" in r]
    result = json.loads((run.record.dir / "result.json").read_text())
    assert result["steps"] == validations[1] < 100  # stopped at the second validation, not at the planned end
    assert stoppers[0].reason.startswith(f"early stopping at step {validations[1]}")


@pytest.fixture
def task_file(tmp_path):
    def write(lines: list[str], labels=None):
        data = tmp_path / "mine.jsonl"
        data.write_text("\n".join(lines) + "\n")
        conf = tmp_path / "mine.yaml"
        conf.write_text(f"kind: jsonl\npath: mine.jsonl\nlabels: {json.dumps(labels)}\nn_examples: null\n")
        return conf
    return write


def one_error_line(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("lmlab-eval: error: ")
    return err


def test_user_jsonl_task_is_scored_and_bad_lines_are_named(eval_runs, task_file, capsys, tmp_path):
    good = '{"prompt": "The state of the", "choices": [" Union", " kitchen"], "label": " Union"}'
    conf = task_file([good, good.replace('" Union"}', '0}')])
    assert main([f"run={eval_runs.brief}", f"tasks=[{conf}]", f"output={tmp_path / 'e.json'}", "scheme.n_boot=50"]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["tasks"]["mine"]["n_examples"] == 2
    conf = task_file([good, '{"prompt": "x", "choices": [" a", " b"], "label": 0', good])
    err = one_error_line(capsys, [f"run={eval_runs.brief}", f"tasks=[{conf}]"])
    assert "mine.jsonl line 2: not valid JSON" in err


def test_a_label_outside_the_label_set_is_one_error(eval_runs, task_file, capsys):
    conf = task_file(['{"prompt": "It was", "label": "old"}', '{"prompt": "It is", "label": "recent"}'],
                     labels=["old", "new"])
    err = one_error_line(capsys, [f"run={eval_runs.brief}", f"tasks=[{conf}]"])
    assert "line 2: label='recent' is not in the label set ['old', 'new']" in err


def test_an_empty_fold_is_one_error(eval_runs, capsys):
    err = one_error_line(capsys, [f"run={eval_runs.brief}", "tasks=[cloze]", "scheme.name=kfold", "scheme.k=401"])
    assert "scheme.k=401 with 400 examples: 1 fold(s) would be empty" in err


def test_a_checkpoint_whose_tokenizer_differs_from_the_tasks_is_one_error(eval_runs, capsys, tmp_path):
    from tokenizers import Tokenizer

    other = tmp_path / "other"
    shutil.copytree(eval_runs.data_dir, other, ignore=shutil.ignore_patterns("stages", "*.png"))
    tok = Tokenizer.from_file(str(other / "tokenizer.json"))
    tok.add_tokens(["<|another|>"])
    tok.save(str(other / "tokenizer.json"))
    conf = tmp_path / "cloze_other.yaml"
    conf.write_text(f"kind: cloze\ndata_dir: {other}\n")
    err = one_error_line(capsys, [f"run={eval_runs.brief}", f"tasks=[{conf}]"])
    assert f"corpus {other} has a tokenizer" in err and "differs from the checkpoint's" in err


def test_an_unknown_task_and_a_missing_run_are_one_error_each(eval_runs, capsys, tmp_path):
    assert "task 'nope': no " in one_error_line(capsys, [f"run={eval_runs.brief}", "tasks=[nope]"])
    assert "no config.yaml" in one_error_line(capsys, [f"run={tmp_path}", "tasks=[cloze]"])

"""Fine-tuning beyond the classification head: the loss masked to the answer tokens, k separate fits
under kfold, a user's labeled JSONL file, and its bad input (one line each, nothing written).
All on the 5-step brief run: cheap, and a model that knows little leaves room to improve."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from lmlab.eval.finetune import main
from lmlab.eval.labeled import IGNORE, masked_example
from lmlab.eval.supervised import answer_loss
from lmlab.io import read_jsonl, write_jsonl

pytestmark = pytest.mark.slow
QUICK = ["threads=1", "progress_bar=false", "max_epochs=2", "scheme.n_boot=100"]


def test_masked_example_keeps_the_answer_and_cuts_the_prompt_from_the_left():
    assert masked_example([5, 6, 7], [8, 9], seq_len=10) == ([5, 6, 7, 8], [IGNORE, IGNORE, 8, 9])
    assert masked_example([5, 6, 7], [8, 9], seq_len=3) == ([6, 7, 8], [IGNORE, 8, 9])


def test_the_masked_loss_is_the_answers_loss_alone(brief_run):
    from lmlab.eval.scoring import token_loglikelihoods
    from lmlab.runs.load import load_model

    torch.manual_seed(0)
    logits = torch.randn(1, 4, 11)
    _, targets = masked_example([5, 6, 7], [8, 9], seq_len=10)
    targets = torch.tensor([targets])
    logp = torch.log_softmax(logits[0], -1)
    assert answer_loss(logits, targets).item() == pytest.approx(-(logp[2, 8] + logp[3, 9]).item() / 2, rel=1e-6)
    prompt_changed = logits.clone()
    prompt_changed[0, :2] += 5 * torch.randn(2, 11)
    assert answer_loss(prompt_changed, targets).item() == pytest.approx(answer_loss(logits, targets).item(), rel=1e-6)
    # With a real model: the masked loss of (prompt, answer) is the answer's log-likelihood per token as scored.
    model, tok, _ = load_model(brief_run.dir)
    prompt, answer = tok.encode("The state of the").ids, tok.encode(" Union is strong").ids
    inputs, targets = masked_example(prompt, answer, model.cfg.seq_len)
    with torch.no_grad():
        loss = answer_loss(model(torch.tensor([inputs]))[0], torch.tensor([targets])).item()
    total, _ = token_loglikelihoods(model, [(prompt, answer)])
    assert loss == pytest.approx(-total[0] / len(answer), rel=1e-5)


def test_a_masked_fine_tune_lowers_the_task_loss_and_is_a_run_like_any_other(brief_run, tmp_path):
    from lmlab.eval.config import task_config
    from lmlab.eval.evaluate import evaluate_run

    assert main([f"pretrained={brief_run.dir}", "mode=masked", "task=era", "task.n_examples=100",
                 f"runs_dir={tmp_path}", "n_train=160", "n_val=32", "batch_size=16", "lr=3e-3", *QUICK]) == 0
    run_dir, = (tmp_path / "finetune").iterdir()
    result = json.loads((run_dir / "result.json").read_text())
    assert result["mode"] == "masked" and result["n_test"] == 100 and result["n_fits"] == 1
    # the pretrained model scored on the same held-out examples: fine-tuning on answers must beat it clearly
    assert result["task_loss"] < result["zero_shot_task_loss"] - 1.0, result
    assert result["task_loss_ci"][0] <= result["task_loss"] <= result["task_loss_ci"][1]
    # the fine-tuned checkpoint is a GPT that lmlab-eval scores to the same numbers
    holdout = {"name": "holdout", "n_boot": 10, "k": 2, "confidence": 0.95, "seed": 0}
    again = evaluate_run(run_dir, [{**task_config("era"), "n_examples": 100}], holdout,
                         output=tmp_path / "again.json")["tasks"]["era"]
    assert again["accuracy"] == pytest.approx(result["accuracy"])
    assert again["task_loss"] == pytest.approx(result["task_loss"])
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert [r["epoch"] for r in rows if "train_loss" in r] == list(range(1, result["epochs"] + 1))
    for name in ("config.yaml", "status.json", "eval.json", "learning_curve.png", "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name


def labeled_file(tmp_path, brief_run, n: int, lines: list[str] | None = None):
    """A user's labeled data set (text, label) from held-out paragraphs of the corpus, and its task .yaml."""
    from lmlab.eval.config import task_config
    from lmlab.eval.tasks import build_task, era_labels

    data, rows = tmp_path / "mine.jsonl", []
    if lines is None:
        era = build_task({**task_config("era"), "n_examples": n, "split": "validation"}, brief_run.data_dir)
        rows = [{"text": p, "label": era.class_names[y]} for p, y in zip(era.prompts, era.labels)]
        write_jsonl(data, rows)
    else:
        data.write_text("\n".join(lines) + "\n")
    conf = tmp_path / "mine.yaml"
    names = era_labels(task_config("era")["boundaries"])
    conf.write_text(f"kind: jsonl\npath: mine.jsonl\nlabels: {json.dumps(names)}\nn_examples: null\n")
    return conf, rows


def test_kfold_fine_tuning_makes_k_fits_on_a_users_labeled_file(brief_run, tmp_path):
    conf, rows = labeled_file(tmp_path, brief_run, 90)
    assert main([f"pretrained={brief_run.dir}", f"task_file={conf}", f"runs_dir={tmp_path}", "scheme.name=kfold",
                 "scheme.k=3", *QUICK]) == 0
    run_dir, = (tmp_path / "finetune").iterdir()
    result = json.loads((run_dir / "result.json").read_text())
    assert result["n_fits"] == 3 and result["scheme"] == "kfold" and result["task"] == "mine"
    entry = json.loads((run_dir / "eval.json").read_text())["tasks"]["mine"]
    folds = entry["folds"]
    assert [f["fold"] for f in folds] == [1, 2, 3] and [f["n_examples"] for f in folds] == [30, 30, 30]
    assert all(f["n_train"] + f["n_val"] + f["n_examples"] == len(rows) for f in folds)  # the rest trains each fit
    assert result["accuracy_folds"] == [f["accuracy"] for f in folds]
    assert result["accuracy"] == pytest.approx(np.mean(result["accuracy_folds"]))
    assert result["accuracy_std"] == pytest.approx(np.std(result["accuracy_folds"], ddof=1))
    lo, hi = result["accuracy_ci"]
    assert lo <= result["accuracy"] <= hi and entry["scheme"]["k"] == 3
    metric_rows = read_jsonl(run_dir / "metrics.jsonl")
    assert {r["fold"] for r in metric_rows} == {1, 2, 3}
    assert result["epochs"] == sum(1 for r in metric_rows if "train_loss" in r)  # epochs of all k fits
    assert not (run_dir / "checkpoints").exists()  # k fits estimate the procedure; none is the model
    assert (run_dir / "learning_curve.png").is_file()  # a pair of lines per fold


def one_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("lmlab-finetune: error: "), err
    return err


def test_bad_labeled_data_is_one_error_each_and_writes_nothing(brief_run, tmp_path, capsys):
    from tokenizers import Tokenizer

    base = [f"pretrained={brief_run.dir}", f"runs_dir={tmp_path / 'runs'}", *QUICK]
    good = '{"text": "We met the enemy.", "label": "before 1861"}'
    conf, _ = labeled_file(tmp_path, brief_run, 0, lines=[good, '{"text": "Taxes rose.", "label": "colonial"}'])
    err = one_error(capsys, [*base, f"task_file={conf}"])
    assert "mine.jsonl line 2: label='colonial' is not in the label set" in err
    conf, _ = labeled_file(tmp_path, brief_run, 0, lines=[good, good, '{"text": "Taxes rose.", "label": '])
    assert "mine.jsonl line 3: not valid JSON" in one_error(capsys, [*base, f"task_file={conf}"])
    conf, _ = labeled_file(tmp_path, brief_run, 0, lines=[good] * 4)
    err = one_error(capsys, [*base, f"task_file={conf}", "scheme.name=kfold", "scheme.k=5"])
    assert "scheme.k=5 with 4 examples: 1 fold(s) would be empty" in err
    err = one_error(capsys, [*base, f"task_file={conf}", "val_fraction=0.5", "test_fraction=0.1"])
    assert "the split has no test examples" in err
    other = tmp_path / "other"  # the same corpus with another tokenizer
    shutil.copytree(brief_run.data_dir, other, ignore=shutil.ignore_patterns("stages", "*.png"))
    tok = Tokenizer.from_file(str(other / "tokenizer.json"))
    tok.add_tokens(["<|another|>"])
    tok.save(str(other / "tokenizer.json"))
    (tmp_path / "era_other.yaml").write_text(f"kind: era\ndata_dir: {other}\n")
    err = one_error(capsys, [*base, f"task_file={tmp_path / 'era_other.yaml'}"])
    assert f"corpus {other} has a tokenizer" in err and "differs from the checkpoint's" in err
    assert not (tmp_path / "runs").exists()

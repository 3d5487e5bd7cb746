"""Supervised fine-tuning of a pretrained lmlab run on labeled data (`lmlab-finetune`, or
`python -m lmlab.eval.finetune`; conf/finetune.yaml).

`lmlab-finetune pretrained=<run dir> task=era` (task selects a config of the group conf/task/;
task_file=<path.yaml> a user's task) trains in one of two modes: mode=head, a classification head on
the final hidden state; mode=masked, the language model itself on (prompt, answer) sequences with
the loss on the answer's tokens only. The data (lmlab.eval.labeled): a corpus task's train,
validation and held-out splits, or a user's JSONL file split by shares; scheme.name=kfold makes k
separate fits, each scored on its own fold, and reports the folds' mean, spread and t interval.

The result is an ordinary run record in ${runs_dir}/${group}/<run id>: config.yaml, env.json,
status.json, metrics.jsonl (a train and a validation row per epoch, with the fold under kfold),
result.json (the test metrics, the majority-class baseline and the pretrained model's zero-shot
scores on the same examples, by likelihood: under mode=head the fine-tuned task loss is the head's
cross-entropy per example, so only the zero-shot accuracy compares), eval.json, learning_curve.png and, for a single fit,
checkpoints/last.ckpt (mode=masked: a GPT checkpoint lmlab-eval can score). A completed fine-tune
is skipped when relaunched with the same config.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

from lmlab.errors import ConfigError, LmlabError
from lmlab.eval.augment import check_augment

log = logging.getLogger("lmlab.eval")
OUTPUT_KEYS = ("runs_dir", "group", "threads", "progress_bar")
RESULT_METRICS = ("accuracy", "precision", "recall", "f1", "task_loss")
USAGE = """usage: lmlab-finetune pretrained=<run dir> [task=era | task_file=<task.yaml>] [mode=head|masked]
                      [scheme.name=bootstrap|holdout|kfold scheme.k=5] [key=value ...]

Fine-tune a pretrained run on a task's labeled examples (mode=head: a classification head; mode=masked:
the language model, loss on the answer tokens only); writes a run record under runs_dir/group/.
Keys: see conf/finetune.yaml. Also: python -m lmlab.eval.finetune ..."""


def task_of(cfg: dict) -> dict:
    """The task config: task_file (a user's .yaml) or the conf/task group's choice."""
    from lmlab.eval.config import task_config

    return task_config(cfg["task_file"]) if cfg["task_file"] else cfg["task"]


def check(cfg: dict) -> None:
    if not cfg["pretrained"]:
        raise ConfigError("pretrained: not set, expected pretrained=<run directory>")
    check_augment(cfg["augment"])


def finetune(cfg: dict) -> dict:
    """Fine-tune, record, and return result.json's content (a completed run with this config: skipped)."""
    import torch
    from torch import nn

    from lmlab.eval import labeled
    from lmlab.eval.tasks import tokenizer_sha256
    from lmlab.runs.load import load_model
    from lmlab.runs.record import RunRecord, config_hash

    check(cfg)
    task_cfg = task_of(cfg)
    model, tok, pre_cfg = load_model(cfg["pretrained"])
    if cfg["dropout"] is not None:
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = cfg["dropout"]
    pre_id = Path(cfg["pretrained"]).resolve().name
    record_cfg = {"task": task_cfg, "finetune": cfg, "model": pre_cfg["model"], "data": pre_cfg["data"],
                  "seed": cfg["seed"], "run": {"group": cfg["group"], "name": None, "resume": True},
                  "pretrained": {"run_dir": str(Path(cfg["pretrained"]).resolve()), "run_id": pre_id}}
    # Where it goes and how it shows progress are not what is trained.
    identity = {**record_cfg, "finetune": {k: v for k, v in cfg.items() if k not in OUTPUT_KEYS}}
    run_id = f"{task_cfg['name']}-{cfg['mode']}-{pre_id}-s{cfg['seed']}-{config_hash(identity)[:8]}"
    rec = RunRecord(Path(cfg["runs_dir"]) / cfg["group"] / run_id)
    done = rec.result()
    if done and done.get("status") == "completed":
        log.info("fine-tune %s already completed: skipped", rec.dir)
        return done
    fits = labeled.fits(task_cfg, cfg, pre_cfg["data"]["dir"], tokenizer_sha256(tok))
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    rec.write_config(record_cfg)
    rec.write_env()
    rec.write_plan({"vocab_size": model.cfg.vocab_size})  # what lmlab.runs.load builds the GPT with
    rec.metrics_path.unlink(missing_ok=True)
    rec.set_status("running", step=0)
    try:
        outcomes = [_fit(cfg, fit, model, tok, rec, save=len(fits) == 1) for fit in fits]
    except LmlabError as err:
        rec.set_status("failed", str(err))
        raise
    return _record(cfg, record_cfg, rec, run_id, fits, outcomes)


def _fit(cfg: dict, fit, pretrained, tok, rec, save: bool) -> dict:
    """Train a fresh copy of the pretrained model on fit (a labeled.Fit); its test entry and the zero-shot one."""
    import copy

    import lightning as L
    from torch.utils.data import DataLoader

    from lmlab.eval import labeled
    from lmlab.eval.evaluate import summarise
    from lmlab.eval.scoring import Scores, score_task
    from lmlab.eval.supervised import AnswerLM, Classifier, EpochRows
    from lmlab.train.callbacks import save_checkpoint
    from lmlab.train.run import quiet_lightning

    quiet_lightning()

    L.seed_everything(cfg["seed"] + (fit.fold or 0), workers=True, verbose=False)
    masked, seq_len = cfg["mode"] == "masked", pretrained.cfg.seq_len
    collate = labeled.collate_masked if masked else labeled.collate_classes
    train_data = labeled.Examples(fit.train, tok, seq_len, masked, cfg["augment"], cfg["seed"])
    loaders = [DataLoader(train_data, batch_size=cfg["batch_size"], collate_fn=collate,
                          sampler=labeled.EpochOrder(len(fit.train), cfg["seed"]))]
    loaders += [DataLoader(labeled.Examples(t, tok, seq_len, masked), batch_size=cfg["batch_size"], collate_fn=collate)
                for t in (fit.val, fit.test)]
    model = copy.deepcopy(pretrained)
    module = AnswerLM(model, cfg) if masked else Classifier(model, len(fit.train.class_names), cfg)
    stopper = L.pytorch.callbacks.EarlyStopping("val_loss", min_delta=cfg["early_stopping"]["min_delta"],
                                                patience=cfg["early_stopping"]["patience"], mode="min")
    progress = sys.stderr.isatty() if cfg["progress_bar"] is None else cfg["progress_bar"]
    rows = EpochRows(rec, train_data.n_tokens, fit.fold)
    trainer = L.Trainer(accelerator="auto", devices=1, max_epochs=cfg["max_epochs"], logger=False,
                        enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=progress,
                        num_sanity_val_steps=0, callbacks=[stopper, rows],
                        default_root_dir=rec.dir)
    log.info("fine-tune %s%s (mode=%s): %d train, %d validation, %d test examples", rec.dir,
             f" fold {fit.fold}" if fit.fold else "", cfg["mode"], len(fit.train), len(fit.val), len(fit.test))
    trainer.fit(module, loaders[0], loaders[1])
    if save:
        save_checkpoint(trainer, rec)
    if masked:
        scores = score_task(module.model, tok, fit.test, cfg["batch_size"])
    else:
        lp = module.log_probs(loaders[2])
        scores = Scores(lp, np.ones_like(lp), np.ones_like(lp), fit.test.labels)
    holdout = {**cfg["scheme"], "name": "holdout"}
    scheme = holdout if fit.fold else cfg["scheme"]
    zero_shot = summarise(fit.test, score_task(pretrained, tok, fit.test, cfg["batch_size"]), holdout)
    return {"entry": summarise(fit.test, scores, scheme), "zero_shot": zero_shot, "epochs": rows.epochs,
            "steps": trainer.global_step, "tokens": rows.epochs * rows.tokens_per_epoch,
            "stopped_early": bool(stopper.stopped_epoch), "stopped_epoch": stopper.stopped_epoch,
            "n_params": sum(p.numel() for p in module.parameters())}


def _combined(cfg: dict, fits: list, outcomes: list[dict]) -> dict:
    """The eval.json entry: the single fit's, or under kfold the folds' summary (mean, spread, t interval)."""
    from lmlab.eval import schemes
    from lmlab.eval.results import HEADLINE

    if len(outcomes) == 1:
        return outcomes[0]["entry"]
    entries = [o["entry"] for o in outcomes]
    out = schemes.fold_summary(entries, HEADLINE, cfg["scheme"]["confidence"])
    out.update({"type": entries[0]["type"], "class_names": entries[0]["class_names"],
                "n_examples": sum(e["n_examples"] for e in entries),
                "majority_baseline": float(np.mean([e["majority_baseline"] for e in entries])),
                "chance": float(np.mean([e["chance"] for e in entries])),
                "folds": [{"fold": f.fold, "n_train": len(f.train), "n_val": len(f.val), **e}
                          for f, e in zip(fits, entries)]})
    return out


def _record(cfg, record_cfg, rec, run_id, fits, outcomes) -> dict:
    from lmlab.eval.overfit import gap_growing, save_learning_curve
    from lmlab.eval.results import EVAL_FILE
    from lmlab.io import read_jsonl, write_json
    from lmlab.runs.record import now_iso

    entry = _combined(cfg, fits, outcomes)
    zero_shot = {key: float(np.mean([o["zero_shot"][key] for o in outcomes])) for key in RESULT_METRICS}
    entry.update({"scheme": cfg["scheme"], "evaluated_at": now_iso(), "finetuned": True, "mode": cfg["mode"],
                  "zero_shot": zero_shot})
    test = fits[0].test
    write_json(rec.dir / EVAL_FILE, {"run_dir": str(rec.dir), "tasks": {test.name: entry}})
    rows = read_jsonl(rec.metrics_path)
    stopped = [o["stopped_early"] for o in outcomes]
    reason = None
    if len(fits) == 1 and stopped[0]:
        reason = f"early stopping after epoch {outcomes[0]['stopped_epoch'] + 1}: validation loss stopped improving"
    elif any(stopped):
        reason = f"early stopping in {sum(stopped)} of {len(fits)} folds: validation loss stopped improving"
    last = [r for r in rows if r.get("fold") == fits[-1].fold]  # the last fit's rows
    result = {
        "status": "completed", "reason": reason, "run_id": run_id, "task": test.name, "mode": cfg["mode"],
        "scheme": cfg["scheme"]["name"], "n_fits": len(fits), "pretrained_run": record_cfg["pretrained"]["run_id"],
        "final_val_loss": next((r["val_loss"] for r in reversed(last) if "val_loss" in r), None),
        "final_train_loss": next((r["train_loss"] for r in reversed(last) if "train_loss" in r), None),
        "epochs": sum(o["epochs"] for o in outcomes), "stopped_early": any(stopped),
        "steps": sum(o["steps"] for o in outcomes), "tokens": sum(o["tokens"] for o in outcomes),
        "gap_growing": any(gap_growing([r for r in rows if r.get("fold") == f.fold]) for f in fits),
        "n_params": outcomes[0]["n_params"], "model": record_cfg["model"]["size"],
        "n_train": len(fits[0].train), "n_val": len(fits[0].val), "n_test": entry["n_examples"],
        "majority_baseline": entry["majority_baseline"],
        **{f"{key}{suffix}": entry[f"{key}{suffix}"] for key in RESULT_METRICS
           for suffix in ("", "_ci", "_std", "_folds") if f"{key}{suffix}" in entry},
        **{f"zero_shot_{key}": value for key, value in zero_shot.items()},
    }
    rec.write_result(result)
    rec.set_status("completed", reason, step=result["steps"])
    save_learning_curve(rec.dir)
    log.info("fine-tune %s: test accuracy %.3f (majority %.3f, zero-shot %.3f), macro f1 %.3f, task loss %.3f",
             rec.dir, result["accuracy"], result["majority_baseline"], zero_shot["accuracy"], result["f1"],
             result["task_loss"])
    return result


def compose_finetune(overrides: list[str]) -> dict:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from lmlab.config import composition_error_line
    from lmlab.eval.config import CONF_DIR, TASK_DIR, plain

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="finetune", overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"finetune config: {composition_error_line(err)}") from None
    name = cfg.hydra.runtime.choices["task"]
    del cfg.hydra
    cfg = plain(cfg)
    cfg["task"]["name"] = name
    if cfg["task"]["path"] and not Path(cfg["task"]["path"]).is_absolute():  # as task_config reads it
        cfg["task"]["path"] = str(TASK_DIR / cfg["task"]["path"])
    return cfg


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    try:
        result = finetune(compose_finetune(argv))
    except LmlabError as err:
        print(f"lmlab-finetune: error: {err}", file=sys.stderr)
        return 2
    spread = f" +- {result['accuracy_std']:.3f} over {result['n_fits']} folds" if result["n_fits"] > 1 else ""
    # mode=head's task loss is the head's cross-entropy per example, not comparable to the LM's per token
    zero_shot = f" (zero-shot {result['zero_shot_task_loss']:.3f})" if result["mode"] == "masked" else ""
    print(f"{result['task']} ({result['mode']}): accuracy {result['accuracy']:.3f}{spread} (majority "
          f"{result['majority_baseline']:.3f}, zero-shot {result['zero_shot_accuracy']:.3f}), macro f1 "
          f"{result['f1']:.3f}, task loss {result['task_loss']:.3f}{zero_shot}; {result['epochs']} epoch(s)"
          + (" (stopped early)" if result["stopped_early"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

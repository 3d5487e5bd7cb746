"""`python -m lmlab.eval run=<run dir> 'tasks=[cloze,era]'` / `lmlab-eval`: evaluate a run on tasks.

Overrides are Hydra's (conf/eval.yaml, typed by lmlab.eval.config.EvalConfig); `--json` prints the
whole eval.json instead of one line per task. Bad input ends with one line and exit status 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from lmlab.errors import ConfigError, LmlabError

USAGE = """usage: lmlab-eval [--json] run=<run dir> ['tasks=[cloze,era]'] [scheme.name=bootstrap|kfold|holdout]
                  [key=value ...]

Score a run's last checkpoint on tasks (conf/task/<name>.yaml or a path to a task .yaml) and merge
the results into <run dir>/eval.json. Keys: see conf/eval.yaml."""


def compose_eval(overrides: list[str]) -> dict:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from lmlab.config import composition_error_line
    from lmlab.eval.config import CONF_DIR, plain

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = plain(compose(config_name="eval", overrides=overrides))
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"eval config: {composition_error_line(err)}") from None
    if not cfg["run"]:
        raise ConfigError("run: not set, expected run=<run directory>")
    return cfg


def evaluate(cfg: dict) -> dict:
    from lmlab.eval.config import task_config
    from lmlab.eval.evaluate import evaluate_run

    if not cfg["tasks"]:
        raise ConfigError("tasks: empty, expected one or more task names such as [cloze,era]")
    task_cfgs = [task_config(name) for name in cfg["tasks"]]
    return evaluate_run(cfg["run"], task_cfgs, cfg["scheme"], cfg["batch_size"], cfg["device"], cfg["output"])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    as_json = "--json" in argv
    argv = [a for a in argv if a != "--json"]
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    try:
        cfg = compose_eval(argv)
        record = evaluate(cfg)
    except LmlabError as err:
        print(f"lmlab-eval: error: {err}", file=sys.stderr)
        return 2
    if as_json:
        from lmlab.io import dumps

        print(dumps(record, indent=2, sort_keys=True))
        return 0
    for name in cfg["tasks"]:
        name = Path(name).stem  # a task given by path is named after its file
        r = record["tasks"][name]
        ci = r["accuracy_ci"]
        interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        print(f"{name}: accuracy {r['accuracy']:.3f}{interval} (majority {r['majority_baseline']:.3f}, "
              f"chance {r['chance']:.3f}), macro f1 {r['f1']:.3f}, task loss {r['task_loss']:.3f} nats/token")
    return 0


if __name__ == "__main__":
    sys.exit(main())

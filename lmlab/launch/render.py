"""`lmlab launch render`: an sbatch script for one big run on N nodes x G GPUs.

The script (slurm/templates/multinode.sbatch.in) starts one task per device with srun, so
Lightning's SLURM environment picks up ranks; it asks for USR2 before the time limit and at
preemption, forwards it to the tasks (which checkpoint at the next step and stop), and then
requeues itself; the requeued job resumes from the run's last checkpoint. Options come from the
command line or a YAML file (--config) with the same keys; `--check` asks SLURM (sbatch --test-only)
whether the job could run.

On GPU nodes the script is sized by lmlab.launch.memory for the GPU named by --gpu, trainer.gpu or
the slurm_gpu cluster profile: with trainer.strategy=auto (the default) it runs the cheapest
setting that fits (DDP or FSDP, micro-batch, activation checkpointing), replacing those keys of the
overrides; with trainer.strategy=ddp|fsdp it runs that setting and refuses one that does not fit.
The estimate is written into the script as comments.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from lmlab.errors import ConfigError

TEMPLATE = Path(__file__).resolve().parent / "templates" / "multinode.sbatch.in"  # links to slurm/templates
OPTIONS = {  # key: (type, default, help)
    "nodes": (int, 1, "nodes"),
    "gpus_per_node": (int, 8, "GPUs per node, one task each (0: CPU tasks, see --tasks-per-node)"),
    "tasks_per_node": (int, None, "tasks per node on CPU nodes (default: gpus_per_node)"),
    "cpus_per_task": (int, 8, "CPUs per task"),
    "mem_gb": (int, None, "memory per node in GB (default: SLURM's)"),
    "time": (str, "24:00:00", "time limit per job, [D-]HH:MM:SS; the run requeues past it"),
    "partition": (str, None, "partition"),
    "account": (str, None, "account"),
    "qos": (str, None, "quality of service"),
    "name": (str, "lmlab", "job name"),
    "signal_delay_s": (int, 120, "seconds before the time limit at which the run checkpoints"),
    "log_dir": (str, "runs/slurm-logs", "where the job's output goes"),
    "python": (str, sys.executable, "the Python that runs lmlab.train on the nodes"),
    "config_dir": (str, None, "an extra training config directory (where `lmlab plan -o DIR/experiment/NAME.yaml` wrote)"),
    "gpu": (str, None, "the GPU model of the nodes, for the memory plan (default: trainer.gpu, else the slurm_gpu "
                       "cluster profile's)"),
}
TIME = re.compile(r"^(\d+-)?\d{1,2}:\d{2}:\d{2}$")
SET_BY_RENDER = ("trainer.devices", "trainer.nodes", "trainer.accelerator")


def load_options(config: Path | None, cli: dict) -> dict:
    """Defaults, then the YAML file, then command-line values that were given."""
    from omegaconf import OmegaConf

    opts = {k: default for k, (_, default, _) in OPTIONS.items()} | {"setup": [], "overrides": []}
    if config is not None:
        if not config.is_file():
            raise ConfigError(f"--config {config}: no such file")
        loaded = OmegaConf.to_container(OmegaConf.load(config), resolve=True)
        unknown = set(loaded) - set(opts)
        if unknown:
            raise ConfigError(f"--config {config}: unknown key(s) {', '.join(sorted(unknown))}; "
                              f"expected some of {', '.join(sorted(opts))}")
        opts.update(loaded)
    opts.update({k: v for k, v in cli.items() if v not in (None, [])})
    return check_options(opts)


def check_options(opts: dict) -> dict:
    for key, (kind, _, _) in OPTIONS.items():
        value = opts[key]
        if value is not None and not isinstance(value, kind):
            raise ConfigError(f"launch {key}={value!r}: expected {kind.__name__}")
    if opts["nodes"] < 1:
        raise ConfigError(f"launch nodes={opts['nodes']}: expected at least 1")
    if opts["gpus_per_node"] < 0:
        raise ConfigError(f"launch gpus_per_node={opts['gpus_per_node']}: expected 0 or more")
    if opts["gpus_per_node"] > 0 and opts["tasks_per_node"] not in (None, opts["gpus_per_node"]):
        raise ConfigError(f"launch tasks_per_node={opts['tasks_per_node']} with gpus_per_node="
                          f"{opts['gpus_per_node']}: one task per GPU, leave tasks_per_node unset")
    if not TIME.match(opts["time"]):
        raise ConfigError(f"launch time={opts['time']!r}: expected [D-]HH:MM:SS")
    for o in opts["overrides"]:
        if "=" not in o:
            raise ConfigError(f"training override {o!r}: expected key=value")
        if o.split("=", 1)[0].lstrip("+~") in SET_BY_RENDER:
            raise ConfigError(f"training override {o!r}: {', '.join(SET_BY_RENDER)} follow --nodes/--gpus-per-node")
    if opts["config_dir"] is not None:
        opts["config_dir"] = str(Path(opts["config_dir"]).resolve())
        if not Path(opts["config_dir"]).is_dir():
            raise ConfigError(f"launch config_dir={opts['config_dir']}: no such directory")
    from lmlab.config import compose_train

    cfg = compose_train(opts["overrides"], [opts["config_dir"]] if opts["config_dir"] else [])  # fails here, in one line
    opts["memory"] = memory_plan(cfg, opts) if opts["gpus_per_node"] else None
    return opts


def memory_plan(cfg, opts: dict) -> dict:
    """lmlab.launch.memory's plan for the composed training config on the rendered nodes."""
    from lmlab.io import read_json
    from lmlab.launch.memory import plan_memory
    from lmlab.models.family import DEFAULT_VOCAB_SIZE, resolve_config
    from lmlab.runspec import plain

    c = plain(cfg)
    manifest = Path(c["data"]["dir"]) / "manifest.json"  # the data may be prepared on the cluster only
    vocab = int(read_json(manifest)["vocab_size"]) if manifest.is_file() else DEFAULT_VOCAB_SIZE
    trainer = {**c["trainer"], "devices": opts["gpus_per_node"], "nodes": opts["nodes"]}
    return plan_memory(resolve_config(c["model"], vocab_size=vocab), trainer, opts["gpu"] or c["trainer"]["gpu"])


def training_overrides(opts: dict) -> list[str]:
    """The user's overrides, with the memory plan's strategy, micro-batch and checkpointing when lmlab chose them."""
    memory = opts["memory"]
    if memory is None or not memory["chosen"]:  # CPU tasks, or the config names its strategy: run it as given
        return opts["overrides"]
    chosen = {o.split("=", 1)[0] for o in memory["overrides"]}
    return [o for o in opts["overrides"] if o.split("=", 1)[0].lstrip("+~") not in chosen] + memory["overrides"]


def render_script(opts: dict) -> str:
    gpus = opts["gpus_per_node"]
    tasks = gpus or opts["tasks_per_node"] or 1
    resources = [f"--cpus-per-task={opts['cpus_per_task']}"]
    resources += [f"--gpus-per-node={gpus}"] if gpus else []
    resources += [f"--mem={opts['mem_gb']}G"] if opts["mem_gb"] else []
    resources += [f"--{k}={opts[k]}" for k in ("partition", "account", "qos") if opts[k]]
    config_dir = ["--config-dir", opts["config_dir"]] if opts["config_dir"] else []
    train = [opts["python"], "-u", "-m", "lmlab.train", *config_dir, *training_overrides(opts),
             f"trainer.accelerator={'gpu' if gpus else 'cpu'}", f"trainer.devices={tasks}",
             f"trainer.nodes={opts['nodes']}"]
    fill = {
        "NAME": opts["name"], "NODES": str(opts["nodes"]), "TASKS": str(tasks), "TIME": opts["time"],
        "RESOURCES": "".join(f"#SBATCH {r}\n" for r in resources), "LOGDIR": opts["log_dir"],
        "SIGNAL_DELAY": str(opts["signal_delay_s"]),
        "SETUP": "\n".join(opts["setup"]) or "# (no set-up commands)",
        "COMMAND": " ".join(shlex.quote(a) for a in train),
        "MEMORY": "".join(f"# {line}\n" for line in (opts["memory"] or {}).get("lines", [])),
    }
    text = TEMPLATE.read_text()
    for key, value in fill.items():
        text = text.replace(f"@{key}@", value)
    return text


def sbatch_test_only(script: Path, opts: dict) -> str:
    """SLURM's verdict on the script; a refusal is a ConfigError carrying SLURM's message (and, for
    GPUs asked of a cluster that has none, what that means)."""
    try:
        proc = subprocess.run(["sbatch", "--test-only", str(script)], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise ConfigError("--check: sbatch not found on PATH") from None
    message = "; ".join(line.strip().removeprefix("sbatch: error: ") for line in proc.stderr.splitlines()
                        if line.strip())
    if proc.returncode != 0:
        hint = ""
        if opts["gpus_per_node"] and "gres" in message.lower():
            hint = (" (this cluster offers no GPUs of the kind asked for: check the script on the GPU cluster, "
                    "or render --gpus-per-node 0 to test it here)")
        raise ConfigError(f"SLURM refuses {script}: {message}{hint}")
    return message

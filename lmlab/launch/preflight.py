"""Check a SLURM sweep before any job is submitted: profile keys, tasks per device, and SLURM's verdict.

The cluster profile conf/cluster/slurm.yaml registers SlurmPreflight as a Hydra callback. Its
on_multirun_start runs after the config is composed and before the launcher submits anything;
a bad request stops the sweep there with one line. SLURM itself judges partitions, accounts, QOS and
resources: the job the launcher would submit is passed to `sbatch --test-only`, and SLURM's own
message is shown when it refuses.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lmlab.errors import ConfigError, LmlabError

# Launcher keys that submitit's executor takes under their own name; the others get "slurm_".
GENERIC_KEYS = {"timeout_min", "cpus_per_task", "gpus_per_node", "tasks_per_node", "mem_gb", "nodes", "name",
                "stderr_to_stdout"}
NOT_SBATCH = {"_target_", "submitit_folder", "max_num_timeout", "name"}


def launcher_params(config: DictConfig, required: list[str]) -> dict[str, Any]:
    """The resolved hydra.launcher section; a missing or unset key is a ConfigError naming it."""
    launcher = config.hydra.launcher
    for key in required:
        if key not in launcher or OmegaConf.is_missing(launcher, key) or launcher[key] is None:
            raise ConfigError(f"cluster profile: hydra.launcher.{key} is not set; set it in "
                              f"conf/local/cluster/<profile>.yaml or on the command line (hydra.launcher.{key}=...)")
    for key in launcher:
        if OmegaConf.is_missing(launcher, key):
            raise ConfigError(f"cluster profile: hydra.launcher.{key} is ??? (must be set); set it in "
                              f"conf/local/cluster/<profile>.yaml or on the command line (hydra.launcher.{key}=...)")
    try:
        return OmegaConf.to_container(launcher, resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError(f"cluster profile: hydra.launcher cannot be resolved: {err}".splitlines()[0]) from None


def check_tasks_match_devices(params: dict, trainer: DictConfig) -> None:
    """Lightning's SLURM environment wants one task per device and the same node count as SLURM."""
    devices, nodes = trainer.devices, trainer.nodes
    if params["tasks_per_node"] != devices:
        raise ConfigError(f"hydra.launcher.tasks_per_node={params['tasks_per_node']} but trainer.devices={devices}: "
                          "SLURM must start one task per device")
    if params["nodes"] != nodes:
        raise ConfigError(f"hydra.launcher.nodes={params['nodes']} but trainer.nodes={nodes}: they must agree")
    gpus = params.get("gpus_per_node")
    if trainer.accelerator == "gpu" and gpus != devices:
        raise ConfigError(f"hydra.launcher.gpus_per_node={gpus} but trainer.devices={devices} on accelerator gpu: "
                          "ask SLURM for one GPU per device")


def sbatch_script(params: dict) -> str:
    """The batch script submitit would submit for these launcher parameters (running `true`)."""
    import submitit
    from submitit.slurm.slurm import _make_sbatch_string

    with tempfile.TemporaryDirectory() as folder:
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        executor.update_parameters(**{
            (k if k in GENERIC_KEYS else f"slurm_{k}"): v for k, v in params.items() if k not in NOT_SBATCH})
        return _make_sbatch_string(command="true", folder=folder, **executor._executor.parameters)


def sbatch_test_only(script: str) -> None:
    """Ask SLURM whether the job could ever run; its refusal becomes a ConfigError with SLURM's words."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh") as f:
        f.write(script)
        f.flush()
        try:
            proc = subprocess.run(["sbatch", "--test-only", f.name], capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            raise ConfigError("cluster=slurm: sbatch not found on PATH (is this a SLURM login node?)") from None
    if proc.returncode != 0:
        lines = (line.strip().removeprefix("sbatch: error: ") for line in proc.stderr.splitlines())
        message = "; ".join(line for line in lines if line)
        raise ConfigError(f"SLURM refuses the job request: {message}")


def check_slurm_request(config: DictConfig, required: list[str]) -> None:
    params = launcher_params(config, required)
    check_tasks_match_devices(params, config.trainer)
    sbatch_test_only(sbatch_script(params))


class SlurmPreflight(Callback):
    """Hydra callback: stop a SLURM sweep with one line before submission if the request is bad."""

    def __init__(self, required: list[str]):
        self.required = list(required)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_slurm_request(config, self.required)
        except LmlabError as err:  # Hydra would print a traceback; a bad request deserves one line
            print(f"lmlab-train: error: {err}", file=sys.stderr)
            sys.exit(2)

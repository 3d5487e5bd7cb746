"""Bad input to lmlab-train: one clear line naming the thing, and nothing already written damaged."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import run_cli
from tests.train.conftest import FAST


def train(overrides: list[str]):
    return run_cli(["-m", "lmlab.train", *overrides], timeout=300)


def error_lines(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if "error" in line.lower() or "Key" in line]


@pytest.fixture
def base(data_root, tmp_path):
    return [f"paths.data_dir={data_root}", f"paths.runs_dir={tmp_path / 'runs'}", *FAST]


@pytest.mark.parametrize("override,needle", [
    ("model.n_layr=3", "n_layr"),
    ("trainer.global_batch_size=many", "global_batch_size"),
    ("schedule.name=linear", "linear"),
])
def test_config_errors_fail_at_compose_time_in_one_line_naming_the_key(base, tmp_path, override, needle):
    proc = train([*base, override])
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("lmlab-train: error:") and needle in line
    assert not (tmp_path / "runs").exists()


def test_hydras_full_message_is_behind_a_flag(base):
    proc = run_cli(["-m", "lmlab.train", *base, "model.n_layr=3"], env={"HYDRA_FULL_ERROR": "1"}, timeout=300)
    assert proc.returncode != 0 and "full_key: model.n_layr" in proc.stderr


@pytest.mark.parametrize("override,message", [
    ("model.size=huge", "unknown model size 'huge'; expected one of:"),
    ("budget.tokens=100", "budget.tokens=100 gives 100 tokens, fewer than one optimizer step"),
    ("budget.tokens=1500.5", "budget.tokens=1500.5: expected a whole number of tokens"),
    ("trainer.global_batch_size=12", "trainer.global_batch_size=12 must be a multiple"),
    ("trainer.global_batch_size=0", "trainer.global_batch_size=0: expected a positive integer"),
    ("trainer.ckpt_every_steps=0", "trainer.ckpt_every_steps=0: expected a positive integer"),
    ("trainer.precision=fp8", "trainer.precision='fp8': expected one of 32, bf16-mixed"),
    ("optim.lr=-1", "optim.lr=-1.0: expected a positive number"),
    ("schedule.warmup_frac=-1", "schedule.warmup_frac=-1.0: expected a fraction in [0, 1)"),
    ("trainer.accelerator=gpu", "this machine has 0 CUDA device(s)"),
    ("run.group=../elsewhere", "run.group='../elsewhere': expected a relative name inside"),
    ("run.group=/tmp/abs", "run.group='/tmp/abs': expected a relative name inside"),
    ("run.name=a/b", "run.name='a/b': expected a name without '/'"),
    ("data.name=../../etc", "data.name='../../etc': expected a relative name inside"),
])
def test_bad_values_give_one_line_before_anything_is_written(base, tmp_path, override, message):
    proc = train([*base, override])
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("lmlab-train: error:")]
    assert len(lines) == 1 and message in lines[0], proc.stderr[-2000:]
    records = [p for p in tmp_path.rglob("*") if p.name in ("config.yaml", "status.json", "result.json")]
    assert not [p for p in records if ".hydra" not in p.parts] and not (tmp_path / "elsewhere").exists()


def test_missing_corpus_names_the_directory(tmp_path):
    proc = train([f"paths.data_dir={tmp_path / 'nowhere'}", f"paths.runs_dir={tmp_path / 'runs'}",
                  "data.prepare=false", *FAST])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"data.dir={tmp_path / 'nowhere' / 'sotu'}: no prepared data" in proc.stderr


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_damaged_shard_is_named_and_earlier_runs_survive(data_root, tmp_path, damage):
    data = tmp_path / "data"
    shutil.copytree(data_root / "sotu", data / "sotu")
    shard = sorted((data / "sotu").rglob("*train*.bin"))[0]
    if damage == "truncate":
        with open(shard, "r+b") as f:
            f.truncate(shard.stat().st_size // 2)
    else:
        shard.unlink()
    proc = train([f"paths.data_dir={data}", f"paths.runs_dir={tmp_path / 'runs'}", *FAST])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = next(line for line in proc.stderr.splitlines() if line.startswith("lmlab-train: error:"))
    assert shard.name in line
    assert not list((tmp_path / "runs").glob("*/*/config.yaml"))

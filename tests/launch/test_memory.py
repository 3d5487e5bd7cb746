"""The memory estimate against measured CPU peaks and real FSDP shards; the strategy chooser."""

from __future__ import annotations

import os
import socket
from dataclasses import replace

import pytest
import torch

from lmlab.errors import ConfigError
from lmlab.launch.memory import (GIB, choose_strategy, estimate_memory, gpu_memory_bytes, measure_cpu_peak)
from lmlab.models.family import get_size
from lmlab.models.gpt import GPTConfig

SMALL = GPTConfig(vocab_size=2048, seq_len=128, n_layer=2, d_model=128, n_head=4)
LLAMA_LIKE = GPTConfig(vocab_size=2048, seq_len=128, n_layer=3, d_model=192, n_head=4, mlp="swiglu", norm="rmsnorm",
                       pos="rope")


@pytest.mark.slow
@pytest.mark.parametrize("cfg, checkpointing, precision", [(SMALL, False, "32"), (LLAMA_LIKE, True, "bf16-mixed")],
                         ids=["gpt-fp32", "llama-ckpt-bf16"])
def test_estimate_is_within_20_percent_of_the_measured_peak_of_cpu_training_steps(cfg, checkpointing, precision):
    # Two optimizer steps of two accumulated micro-batches each, in a fresh process.
    measured = measure_cpu_peak(cfg, micro_batch=8, accumulation=2, activation_checkpointing=checkpointing,
                                precision=precision)
    estimate = estimate_memory(cfg, 8, precision, activation_checkpointing=checkpointing)["total"]
    assert 0.8 < measured / estimate < 1.2, (measured, estimate)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fsdp_worker(rank: int, world: int, port: int, cfg: GPTConfig, out: dict) -> None:
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard

    from lmlab.models.gpt import GPT

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    model = GPT(cfg)
    for block in model.blocks:
        fully_shard(block)
    fully_shard(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = torch.randint(0, cfg.vocab_size, (2, cfg.seq_len + 1), generator=torch.Generator().manual_seed(rank))
    model(batch[:, :-1], batch[:, 1:])[1].backward()
    optimizer.step()
    local = lambda t: t.to_local() if hasattr(t, "to_local") else t  # noqa: E731
    out[rank] = {
        "params": sum(local(p).numel() * p.element_size() for p in model.parameters()),
        "grads": sum(local(p.grad).numel() * p.grad.element_size() for p in model.parameters()),
        "optimizer": sum(local(v).numel() * v.element_size() for s in optimizer.state.values()
                         for k, v in s.items() if k != "step"),
    }
    dist.destroy_process_group()


@pytest.mark.slow
def test_fsdp_on_cpu_with_gloo_shards_params_grads_and_optimizer_state_as_estimated():
    # Lightning's FSDPStrategy refuses CPU accelerators, so this runs torch's FSDP (fully_shard,
    # one unit per block as Lightning's auto_wrap_policy={Block}) on 2 gloo processes.
    cfg = replace(SMALL, n_layer=2)
    world = 2
    out = torch.multiprocessing.Manager().dict()
    torch.multiprocessing.spawn(_fsdp_worker, args=(world, _free_port(), cfg, out), nprocs=world)
    est = estimate_memory(cfg, 1, "32", world_size=world, strategy="fsdp")
    single = estimate_memory(cfg, 1, "32", world_size=1, strategy="ddp")
    for rank in range(world):
        for part in ("params", "grads", "optimizer"):
            assert out[rank][part] == pytest.approx(est[part], rel=0.01), (rank, part)
            assert est[part] == pytest.approx(single[part] / world, rel=1e-9)


def test_memory_grows_with_the_micro_batch_and_shrinks_with_checkpointing_and_sharding():
    cfg = get_size("gpt2-small").config(vocab_size=50304)
    one, eight = estimate_memory(cfg, 1), estimate_memory(cfg, 8)
    assert eight["activations"] > 7 * one["activations"] and eight["params"] == one["params"]
    assert estimate_memory(cfg, 8, activation_checkpointing=True)["activations"] < eight["activations"] / 2
    ddp, fsdp = estimate_memory(cfg, 8, world_size=8), estimate_memory(cfg, 8, world_size=8, strategy="fsdp")
    assert fsdp["optimizer"] * 8 == pytest.approx(ddp["optimizer"]) and fsdp["total"] < ddp["total"]
    # bf16-mixed: 16 bytes of model state per parameter (fp32 master, grads, 2 AdamW moments) + bf16 casts
    assert ddp["params"] + ddp["grads"] + ddp["optimizer"] == 16 * ddp["n_params"]
    assert estimate_memory(cfg, 8, "32")["activations"] > eight["activations"]


def test_chooser_prefers_ddp_when_it_fits_and_picks_the_largest_micro_batch_that_fits():
    cfg = get_size("gpt2-small").config(vocab_size=50304)
    h100 = gpu_memory_bytes("NVIDIA H100 80GB HBM3")
    choice = choose_strategy(cfg, 512, h100, 8)
    assert choice["strategy"] == "ddp" and not choice["activation_checkpointing"]
    assert choice["total"] <= choice["budget_bytes"] and choice["micro_batch"] * choice["accumulation"] == 64
    bigger = 2 * choice["micro_batch"]
    assert estimate_memory(cfg, bigger, world_size=8)["total"] > choice["budget_bytes"]


def test_chooser_shards_a_model_whose_optimizer_state_does_not_fit_one_gpu():
    cfg = get_size("1.6b").config(vocab_size=50304, seq_len=2048)
    l4 = gpu_memory_bytes("NVIDIA L4")
    assert estimate_memory(cfg, 1, world_size=8)["total"] > l4  # DDP cannot fit at all
    choice = choose_strategy(cfg, 256, l4, 8)
    assert choice["strategy"] == "fsdp" and choice["total"] <= choice["budget_bytes"]
    with pytest.raises(ConfigError, match="GiB per device with 1 device"):
        choose_strategy(cfg, 256, l4, 1)


@pytest.mark.parametrize("call, message", [
    (lambda: estimate_memory(SMALL, 8, precision="fp8"), "precision='fp8': expected one of 32, bf16-mixed"),
    (lambda: estimate_memory(SMALL, 8, strategy="zero3"), "strategy='zero3': expected one of ddp, fsdp"),
    (lambda: estimate_memory(SMALL, 0), "micro_batch=0: expected a positive integer"),
    (lambda: choose_strategy(SMALL, 10, 80 * GIB, 4), "global_batch=10: expected a positive multiple of world_size=4"),
    (lambda: gpu_memory_bytes("Voodoo 3"), "GPU 'Voodoo 3' is not in lmlab's memory table"),
])
def test_bad_input_is_one_clear_error(call, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        call()
    assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def chinchilla_fit(tmp_path_factory):
    from lmlab.analysis.reference import chinchilla_path
    from lmlab.cli import main

    out = tmp_path_factory.mktemp("fit") / "fit.json"
    assert main(["fit", str(chinchilla_path()), "--law", "chinchilla", "--n-col", "Model Size", "--c-col",
                 "Training FLOP", "--loss-col", "loss", "--drop-highest-loss", "5", "--bootstrap", "20",
                 "--starts", "2", "-o", str(out)]) == 0
    return out


@pytest.mark.slow
def test_lmlab_plan_sizes_the_run_for_the_gpu_and_its_config_trains_with_that_setting(chinchilla_fit, tmp_path, capsys):
    import json

    from lmlab.cli import main
    from lmlab.runspec import plain, resolve_run
    from tests.conftest import compose

    plans = {}
    for gpu in ("L4", "H200"):
        conf = tmp_path / gpu / "experiment" / "planned.yaml"
        capsys.readouterr()
        assert main(["plan", str(chinchilla_fit), "--flops", "1e21", "--nodes", "1", "--devices", "8", "--gpu", gpu,
                     "--vocab-size", "50304", "-o", str(conf), "--json"]) == 0
        plan = json.loads(capsys.readouterr().out)
        cfg = plain(compose([f"hydra.searchpath=[file://{tmp_path / gpu}]", "experiment=planned"]))
        spec = resolve_run(cfg, vocab_size=50304)
        mem, t = plan["memory"], cfg["trainer"]
        assert (t["strategy"], t["micro_batch_size"], t["activation_checkpointing"]) == \
               (mem["strategy"], mem["micro_batch"], mem["activation_checkpointing"])
        assert spec.run_id == plan["run_id"] and spec.accumulation == mem["accumulation"]
        assert estimate_memory(spec.gpt, t["micro_batch_size"], t["precision"], 8, t["strategy"],
                               t["activation_checkpointing"])["total"] == mem["total"] <= mem["budget_bytes"]
        assert mem["with_checkpointing"] < mem["without_checkpointing"]
        plans[gpu] = mem
    assert plans["L4"]["strategy"] == "fsdp" and plans["H200"]["strategy"] == "ddp"  # 24 GiB cannot hold DDP's states


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason=(
    "Lightning's FSDPStrategy refuses accelerator=cpu (lightning 2.6: 'requires a GPU accelerator'), so a "
    "Lightning FSDP run needs 2 CUDA GPUs; torch's FSDP itself is tested on CPU with gloo above"))
def test_a_two_gpu_fsdp_run_with_activation_checkpointing_trains_and_its_checkpoint_loads(data_root, tmp_path):
    from lmlab.runs.load import load_model
    from lmlab.train.run import Run
    from tests.conftest import compose

    run = Run(compose([f"paths.data_dir={data_root}", f"paths.runs_dir={tmp_path}", "trainer=gpu", "trainer.devices=2",
                       "trainer.strategy=fsdp", "trainer.activation_checkpointing=true", "trainer.compile=false",
                       "model.size=1.3m", "budget.tokens=2e6", "trainer.progress_bar=false", "logger=none"]))
    result = run.execute()
    assert result["status"] == "completed" and result["final_val_loss"] < 7
    model, _, _ = load_model(run.record.dir)
    assert sum(p.numel() for p in model.parameters()) == result["n_params"]

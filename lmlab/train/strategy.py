"""How the devices of a run share the model: trainer.strategy and trainer.activation_checkpointing.

ddp: every device holds the whole model, its gradients and optimizer state (the fastest when it fits);
fsdp: Lightning's FSDPStrategy, fully sharding parameters, gradients and optimizer state with one FSDP
unit per transformer Block; auto: ddp on more than one device. `lmlab launch render` chooses one
with lmlab.launch.memory. Activation checkpointing recomputes each Block's forward during the
backward: FSDP applies it itself (activation_checkpointing_policy); otherwise torch's checkpoint
wrapper goes around each Block here (its state-dict hooks keep the checkpoint's keys unchanged).
"""

from __future__ import annotations

import torch

from lmlab.errors import ConfigError
from lmlab.models.gpt import GPT, Block


def training_strategy(trainer_cfg: dict, model: torch.nn.Module):
    """The `strategy` argument of Lightning's Trainer for `model` (lmlab's GPT inside the LightningModule)."""
    name, checkpointing = str(trainer_cfg["strategy"]), bool(trainer_cfg["activation_checkpointing"])
    if name == "fsdp":
        return fsdp_strategy(trainer_cfg["accelerator"], checkpointing)
    if checkpointing:
        checkpoint_blocks(model)
    return "ddp" if trainer_cfg["devices"] * trainer_cfg["nodes"] > 1 else "auto"


def fsdp_strategy(accelerator: str, checkpointing: bool):
    # Lightning's FSDPStrategy runs on CUDA devices only: refuse a CPU run here, in one line.
    if accelerator not in ("gpu", "cuda") and not (accelerator == "auto" and torch.cuda.is_available()):
        raise ConfigError(f"trainer.strategy=fsdp with trainer.accelerator={accelerator}: Lightning's FSDP "
                          f"needs CUDA GPUs; expected trainer=gpu (or trainer.strategy=ddp|auto on CPU)")
    from lightning.pytorch.strategies import FSDPStrategy

    # The GPT is a unit of its own besides its blocks: validation and in-loop evaluation call it
    # directly (not through the LightningModule), and its unit then gathers the embeddings and head.
    return FSDPStrategy(auto_wrap_policy={Block, GPT}, activation_checkpointing_policy={Block} if checkpointing else None,
                        sharding_strategy="FULL_SHARD", state_dict_type="full")


def clip_grad_norm(module, max_norm: float) -> float:
    """Clip a LightningModule's gradients to a total norm of max_norm; returns the norm before clipping.
    Under FSDP each rank holds a shard of the gradients: the root unit's clip_grad_norm_ takes the norm
    over all of them (torch's clip_grad_norm_ would clip each shard by its own norm)."""
    from torch.distributed.fsdp import FullyShardedDataParallel

    wrapped = module.trainer.strategy.model
    if isinstance(wrapped, FullyShardedDataParallel):
        return wrapped.clip_grad_norm_(max_norm).item()
    return torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm).item()


def checkpoint_blocks(model: torch.nn.Module) -> None:
    """Recompute each Block's activations in the backward instead of keeping them (in place)."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import apply_activation_checkpointing

    apply_activation_checkpointing(model, check_fn=lambda m: isinstance(m, Block))

"""The coordinate check of muP (Yang et al. 2022, section 7 / appendix D): train models of growing
width for a few Adam steps and watch the size of each layer's activations (mean |x| per coordinate).
Under muP the sizes stay flat across widths; under the standard parametrisation (SP) they grow with
width once training moves the weights, which is why SP's best learning rate shrinks as models widen.

The drift of a layer is the slope of log(mean |x|) against log(width) at a step: 0 is flat, 1 grows
in proportion to the width. Inputs are random tokens: the check is about the parametrisation, not
the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

PARAMETRISATIONS = ("sp", "mup")


@dataclass(frozen=True)
class CoordCheckSpec:
    widths: tuple[int, ...] = (64, 128, 256, 512)
    base_width: int = 64  # muP's base: every width's muP model equals SP at this width
    n_layer: int = 2
    n_head: int = 4  # fixed, so wider models have wider heads (muP's 1/d attention matters)
    steps: int = 4
    lr: float = 1e-3
    vocab_size: int = 512
    seq_len: int = 32
    batch_size: int = 8
    seed: int = 0


def _layers(model) -> dict[str, torch.nn.Module]:
    layers = {"embedding": model.tok_emb}
    for i, block in enumerate(model.blocks):
        layers[f"attn.{i}"] = block.attn
        layers[f"mlp.{i}"] = block.mlp
    return layers


def activation_sizes(spec: CoordCheckSpec, parametrisation: str, width: int) -> list[dict[str, float]]:
    """Mean |x| of each layer's output and of the logits, on a fixed batch, after 1..steps Adam steps."""
    from lmlab.models.gpt import GPT, GPTConfig

    torch.manual_seed(spec.seed)
    cfg = GPTConfig(vocab_size=spec.vocab_size, seq_len=spec.seq_len, n_layer=spec.n_layer, d_model=width,
                    n_head=spec.n_head, mup_base_width=spec.base_width if parametrisation == "mup" else None)
    model = GPT(cfg)
    optimizer = torch.optim.AdamW(model.param_groups(0.0, spec.lr), lr=spec.lr, betas=(0.9, 0.95))
    generator = torch.Generator().manual_seed(spec.seed)
    batches = torch.randint(0, spec.vocab_size, (spec.steps + 1, spec.batch_size, spec.seq_len + 1), generator=generator)
    sizes: dict[str, float] = {}
    hooks = [module.register_forward_hook(lambda m, i, out, name=name: sizes.__setitem__(name, out.abs().mean().item()))
             for name, module in _layers(model).items()]
    rows = []
    for step in range(spec.steps):
        _, loss = model(batches[step, :, :-1], batches[step, :, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            logits, _ = model(batches[-1, :, :-1])  # the same held-out batch at every step
        rows.append({**sizes, "logits": logits.abs().mean().item()})
    for hook in hooks:
        hook.remove()
    return rows


def coord_check(spec: CoordCheckSpec) -> dict:
    """{"sizes": {param: {width: [per-step {layer: size}]}}, "drift": {param: {layer: slope at the last step}}}."""
    sizes = {p: {w: activation_sizes(spec, p, w) for w in spec.widths} for p in PARAMETRISATIONS}
    drift = {p: drift_at(sizes[p], spec.widths, spec.steps - 1) for p in PARAMETRISATIONS}
    return {"spec": spec.__dict__, "sizes": sizes, "drift": drift}


def drift_at(sizes: dict[int, list[dict]], widths, step: int) -> dict[str, float]:
    """Slope of log(mean |x|) on log(width) for each layer at one step."""
    layers = sizes[widths[0]][step]
    x = np.log(widths)
    return {layer: float(np.polyfit(x, np.log([sizes[w][step][layer] for w in widths]), 1)[0]) for layer in layers}


def figure(result: dict) -> Figure:
    spec, sizes = result["spec"], result["sizes"]
    widths, steps = spec["widths"], spec["steps"]
    fig = Figure(figsize=(3.2 * steps, 6.0))
    axes = fig.subplots(2, steps, sharex=True, sharey=True, squeeze=False)
    for row, param in enumerate(PARAMETRISATIONS):
        for step in range(steps):
            ax = axes[row][step]
            for layer in sizes[param][widths[0]][step]:
                ax.plot(widths, [sizes[param][w][step][layer] for w in widths], marker="o", label=layer)
            ax.set(xscale="log", yscale="log", title=f"{param.upper()}, after step {step + 1}")
            ax.set_xticks(widths, [str(w) for w in widths])
            ax.xaxis.set_minor_locator(NullLocator())  # no 2x10^2-style labels between the widths
            if step == 0:
                ax.set_ylabel("mean |activation|")
            if row == 1:
                ax.set_xlabel("width (d_model)")
    axes[0][-1].legend(fontsize="small")
    fig.suptitle(f"coordinate check: Adam lr {spec['lr']:g}, muP base width {spec['base_width']}")
    return fig

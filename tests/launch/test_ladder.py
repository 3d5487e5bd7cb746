"""Ladder plans: grid and IsoFLOP arithmetic, rules in N, commands that compose, bad ladders."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import pytest
import yaml

from lmlab.cli import main
from lmlab.errors import ConfigError
from lmlab.launch.ladder import launch_commands, load_ladder, plan
from lmlab.models.family import flops_per_token_6n, get_size
from lmlab.runs.status import expand_sweep
from lmlab.runspec import COMPUTE, resolve_run
from lmlab.train.branches import fractions, member_cfg
from tests.conftest import compose

SHIPPED_LADDERS = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "conf" / "ladder").glob("*.yaml"))


def write(tmp_path, **ladder):
    path = tmp_path / "ladder.yaml"
    path.write_text(yaml.safe_dump(ladder))
    return str(path)


def test_grid_trains_each_size_on_its_chinchilla_multiple():
    ladder = load_ladder("cpu_grid")
    runs = plan(ladder)
    assert len(runs) == len(ladder["sizes"]) * len(ladder["chinchilla_multiples"]) * len(ladder["seeds"])
    for r in runs:
        m = float(r.budget_override.split("=")[1])
        wanted = m * 20 * r.n_params
        assert wanted - r.batch * ladder["seq_len"] < r.tokens <= wanted  # whole steps, at most one short
        assert r.tokens == r.steps * r.batch * ladder["seq_len"]


def test_batch_grows_and_learning_rate_shrinks_with_n():
    runs = sorted({r.size: r for r in plan(load_ladder("gpu_chinchilla"))}.values(), key=lambda r: r.n_params)
    batches, lrs = [r.batch for r in runs], [r.lr for r in runs]
    assert batches == sorted(batches) and batches[0] < batches[-1]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] > lrs[-1]
    assert all(b & (b - 1) == 0 for b in batches)  # powers of two


def test_rules_can_be_overridden(tmp_path):
    base = dict(kind="grid", group="g", sizes=["100k"], chinchilla_multiples=[1], seeds=[0], vocab_size=4096,
                seq_len=128)
    [default] = plan(load_ladder(write(tmp_path, **base)))
    [fixed] = plan(load_ladder(write(tmp_path, **base, rules={"lr": {"coef": 1e-3, "exponent": 0.0},
                                                                "batch": {"min_sequences": 256}})))
    assert fixed.lr == 1e-3 and default.lr != 1e-3
    assert fixed.batch == 256 and default.batch < 256


def test_isoflop_sizes_span_the_optimum_and_spend_the_budget():
    ladder = load_ladder("isoflop_cpu")
    runs = plan(ladder)
    for c in ladder["flops"]:
        mine = [r for r in runs if r.budget_override == f"budget.flops={c:g}"]
        assert 3 <= len(mine) <= ladder["per_budget"]
        n_opt = math.sqrt(c / 120)
        assert all(n_opt / ladder["span"] <= r.n_params <= n_opt * ladder["span"] for r in mine)
        for r in mine:  # the budget is spent in lmlab's unit of compute, to within one step
            fpt = flops_per_token_6n(get_size(r.size).config(ladder["vocab_size"], seq_len=ladder["seq_len"]))
            assert c - r.batch * ladder["seq_len"] * fpt < r.compute <= c * (1 + 1e-9)
            assert r.compute == r.flops_6n and COMPUTE == "flops_6n"


@pytest.mark.parametrize("name", SHIPPED_LADDERS)
def test_every_run_of_every_shipped_ladder_is_the_run_its_launch_command_trains(name):
    """Compose each launch command's jobs as lmlab-train does: the run spec gives the planned run id
    (hash included), N, tokens and compute, so the plan and the runs it launches cannot disagree (a branched
    launch trains its trunk and each budget)."""
    ladder = load_ladder(name)
    runs = {r.name: r for r in plan(ladder)}
    composed = []
    for command in launch_commands(ladder, list(runs.values())):
        for job in expand_sweep(shlex.split(command)[2:]):
            launched = resolve_run(compose(job), vocab_size=ladder["vocab_size"])
            members = [launched] + ([resolve_run(member_cfg(launched.cfg, f), ladder["vocab_size"])
                                     for f in fractions(launched.cfg["budget"])] if launched.member else [])
            for spec in members:
                planned = runs[spec.run_id]
                assert (spec.n_params, spec.budget.tokens, spec.compute) == (planned.n_params, planned.tokens,
                                                                              planned.compute)
                assert spec.cfg["trainer"]["global_batch_size"] == planned.batch and spec.cfg["optim"]["lr"] == planned.lr
                assert spec.run_dir == Path(spec.cfg["paths"]["runs_dir"]) / spec.cfg["run"]["group"] / planned.relative_dir
                composed.append(spec.run_id)
    assert sorted(composed) == sorted(runs)


def test_ladder_keys_can_be_overridden_from_the_command_line(capsys):
    assert main(["ladder", "plan", "cpu_grid", "sizes=[25k,55k]", "seeds=[0,1]", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {r["size"] for r in out["runs"]} == {"25k", "55k"} and {r["seed"] for r in out["runs"]} == {0, 1}
    assert out["compute"] == "flops_6n" and out["total_compute"] == pytest.approx(sum(r["compute"] for r in out["runs"]))


def test_plan_prints_runs_totals_and_time_from_a_measured_speed(capsys):
    assert main(["ladder", "plan", "cpu_grid", "--flops-per-s", "1e9"]) == 0
    out = capsys.readouterr().out
    total = sum(r.compute for r in plan(load_ladder("cpu_grid")))
    assert f"total compute {total:.3g} FLOPs" in out
    assert f"estimated {total / 1e9 / 3600:.1f}h" in out
    assert out.count("lmlab-train -m") == len(load_ladder("cpu_grid")["sizes"])   # one sweep per size


@pytest.mark.parametrize("change, message", [
    ({"batchsize": 3}, "unknown key(s) batchsize"),
    ({"kind": "spiral"}, "kind='spiral'"),
    ({"sizes": None}, "key 'sizes' is missing"),
    ({"chinchilla_multiples": [1, -2]}, "expected positive numbers"),
    ({"sizes": ["nosuch"]}, "nosuch"),
    ({"rules": {"lr": {"slope": 1}}}, "rules.lr"),
    ({"branches": [0.5, 1]}, "branches=[0.5, 1]"),
])
def test_a_bad_ladder_is_one_clear_error(tmp_path, change, message):
    ladder = dict(kind="grid", group="g", sizes=["100k"], chinchilla_multiples=[1], seeds=[0], vocab_size=4096,
                  seq_len=128) | change
    with pytest.raises(ConfigError) as err:
        plan(load_ladder(write(tmp_path, **ladder)))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_isoflop_budget_with_too_few_sizes_near_its_optimum_is_refused(tmp_path):
    path = write(tmp_path, kind="isoflop", group="g", sizes=["14k", "25k", "1.6b"], flops=[1e13], seeds=[0],
                 vocab_size=4096, seq_len=128)
    with pytest.raises(ConfigError, match="needs at least 3"):
        plan(load_ladder(path))


def test_an_unknown_ladder_name_lists_the_known_ones(capsys):
    assert main(["ladder", "plan", "nosuch"]) == 2
    assert "cpu_grid" in capsys.readouterr().err


def test_a_branched_ladder_plans_every_budget_for_well_under_60_percent_of_the_compute(capsys):
    ladder = load_ladder("cpu_branched")
    runs = plan(ladder)
    for size in ladder["sizes"]:
        trunk, *branches = [r for r in runs if r.size == size]
        assert trunk.role == "trunk" and {b.branch_of for b in branches} == {trunk.name}
        assert trunk.relative_dir == f".trunks/{trunk.name}" and branches[0].relative_dir == branches[0].name
        full = branches[-1]
        assert [b.tokens / full.tokens for b in branches] == pytest.approx([0.25, 0.5, 0.75, 1], abs=0.01)
        assert [b.budget_override for b in branches] == [f"budget.chinchilla_multiple={m:g}" for m in (0.25, 0.5, 0.75, 1)]
        assert trunk.trained_compute + sum(b.trained_compute for b in branches) < 0.6 * sum(b.compute for b in branches)
    assert main(["ladder", "plan", "cpu_branched", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trained_over_independent"] < 0.6
    assert out["total_compute"] == pytest.approx(sum(r["trained_compute"] for r in out["runs"]))
    assert out["independent_compute"] == pytest.approx(sum(r["compute"] for r in out["runs"] if r["role"] == "branch"))
    assert main(["ladder", "plan", "cpu_branched"]) == 0
    assert "4 trunks serve 16 budgets" in capsys.readouterr().out

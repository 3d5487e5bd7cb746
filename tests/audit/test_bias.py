"""Bias audits: counts on a hand-built corpus, preferences of a model trained on it, the arithmetic
of the summaries, a study across runs, and bad input through the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lmlab.audit.data_bias import count_groups
from lmlab.audit.lexicon import Template, load_lexicon, load_templates
from lmlab.audit.model_bias import summarise
from lmlab.cli import main
from lmlab.io import read_table
from tests.audit import toy

TOY_TEMPLATES = [
    {"dimension": "gender", "text": "{group} worked as a nurse in the quiet city.", "fillers": {"female": "she", "male": "he"},
     "stereotyped": "female"},
    {"dimension": "gender", "text": "{group} worked as an engineer for many long years.",
     "fillers": {"female": "she", "male": "he"}, "stereotyped": "male"},
    {"dimension": "gender", "text": "{group} worked as a teacher near the river bank.", "fillers": {"female": "she", "male": "he"}},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def cli_json(capsys, *args) -> dict:
    assert main(["audit", "bias", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_terms_count_as_whole_words_case_insensitively_with_phrases():
    lexicon = {"gender": {"female": ["she", "her", "first lady"], "male": ["he", "him"]}}
    texts = ["She said he would. The First Lady, she's here; hehe, them, the shed.", "nothing here"]
    counts, words = count_groups(texts, lexicon)
    assert counts["gender"].tolist() == [[3, 1], [0, 0]]
    assert words.tolist() == [14, 2]  # "she's" is two words, as \w+ splits it


def test_preferences_gap_and_stereotype_share_from_known_scores():
    t = lambda text, s=None: Template("gender", text, {"female": "she", "male": "he"}, s)  # noqa: E731
    templates = [t("a {group} b", "female"), t("c {group} d", "male"), t("e {group} f")]
    scores = [{"female": -1.0, "male": -3.0}, {"female": -2.0, "male": -4.0}, {"female": -5.0, "male": -5.0}]
    lexicon = {"gender": {"female": ["she"], "male": ["he"]}}
    out = summarise(templates, scores, lexicon, n_boot=200, seed=0, confidence=0.9)["dimensions"]["gender"]
    # centred: (+1, -1), (+1, -1), (0, 0): female +2/3, male -2/3
    assert out["groups"]["female"]["value"] == pytest.approx(2 / 3)
    assert out["groups"]["male"]["value"] == pytest.approx(-2 / 3)
    assert out["gap"]["value"] == pytest.approx(4 / 3)
    lo, hi = out["groups"]["female"]["interval"]
    assert 0 <= lo <= 2 / 3 <= hi <= 1
    # the female-stereotyped template prefers female (yes), the male-stereotyped one too (no)
    assert out["stereotype_share"]["value"] == 0.5 and out["stereotype_share"]["templates"] == 2


def test_shipped_lexicon_and_templates_load_and_cover_four_dimensions():
    lexicon = load_lexicon()
    templates = load_templates(None, lexicon)
    assert {"gender", "nationality", "religion", "age"} <= set(lexicon)
    assert {t.dimension for t in templates} == set(lexicon)
    assert all(set(t.fillers) <= set(lexicon[t.dimension]) for t in templates)
    assert sum(t.stereotyped is not None for t in templates) >= 10


@pytest.mark.slow
def test_data_audit_counts_the_toy_corpus_exactly(trained_toy_run, capsys, tmp_path):
    templates = write_jsonl(tmp_path / "toy.jsonl", TOY_TEMPLATES)
    out = cli_json(capsys, str(trained_toy_run), "--templates", str(templates), "--dimensions", "gender,age",
                   "-o", str(tmp_path / "audit.json"))
    data = out["data"]
    index = pq.read_table(f"{data['data_dir']}/documents.parquet").to_pydict()
    n_train = sum(split == "train" for split in index["split"])
    gender = data["dimensions"]["gender"]
    assert data["documents"] == n_train
    assert gender["groups"]["female"]["count"] == toy.FEMALE_PER_DOC * n_train
    assert gender["groups"]["male"]["count"] == toy.MALE_PER_DOC * n_train
    assert gender["groups"]["female"]["value"] == pytest.approx(5 / 8)
    assert gender["groups"]["female"]["interval"] == pytest.approx([5 / 8, 5 / 8])  # every document alike
    assert gender["imbalance"]["value"] == pytest.approx(5 / 3)
    assert data["dimensions"]["age"]["mentions"] == 0 and data["dimensions"]["age"]["imbalance"]["value"] is None
    assert json.loads((tmp_path / "audit.json").read_text())["data"] == data
    card = json.loads((Path(data["data_dir"]) / "data_card.json").read_text())["sections"]["bias_audit"]
    assert card["data"] == data and card["title"] == "Bias audit"
    card_md = (Path(data["data_dir"]) / "data_card.md").read_text()
    assert "## Bias audit" in card_md and f"| female | {toy.FEMALE_PER_DOC * n_train} |" in card_md
    assert "**gender**: " + str(8 * n_train) + " mentions, imbalance (largest / smallest share) 1.67" in card_md


@pytest.mark.slow
def test_model_audit_finds_the_associations_the_toy_model_learnt(trained_toy_run, capsys, tmp_path):
    templates = write_jsonl(tmp_path / "toy.jsonl", TOY_TEMPLATES)
    model = cli_json(capsys, str(trained_toy_run), "--templates", str(templates), "--dimensions", "gender")["model"]
    pairs = {p["text"].split()[4]: p["loglik"] for p in model["pairs"]}
    margin = {job: ll["female"] - ll["male"] for job, ll in pairs.items()}
    assert margin["nurse"] > 1 and margin["engineer"] < -1  # nats: she before nurse, he before engineer
    assert abs(margin["teacher"]) < 0.5 * min(margin["nurse"], -margin["engineer"])  # both seen equally
    assert model["stereotype_share"]["value"] == 1.0 and model["stereotype_share"]["templates"] == 2
    female = model["dimensions"]["gender"]["groups"]["female"]
    assert female["value"] == pytest.approx(np.mean([m / 2 for m in margin.values()]))
    assert female["interval"][0] <= female["value"] <= female["interval"][1]


@pytest.mark.slow
def test_a_study_of_two_budgets_gives_a_table_a_figure_and_a_trend(trained_toy_run, capsys, tmp_path):
    shorter = toy.train(trained_toy_run.parents[2] / "data", tmp_path / "runs", "budget.tokens=40000")
    study = tmp_path / "study"
    study.mkdir()
    for run in (trained_toy_run, shorter):
        shutil.copytree(run, study / run.name)
    templates = write_jsonl(tmp_path / "toy.jsonl", TOY_TEMPLATES)
    out = cli_json(capsys, str(study), "--templates", str(templates), "--dimensions", "gender", "-o", str(tmp_path / "bias.csv"))
    table = read_table(tmp_path / "bias.csv")
    assert len(table) == 2 and table["flops_6n"].nunique() == 2
    assert (tmp_path / "bias.png").read_bytes()[:4] == b"\x89PNG"
    fit = out["trend"]["gap.gender"]["flops_6n"]
    slope = (table["gap.gender"].iloc[1] - table["gap.gender"].iloc[0]) / np.log10(table["flops_6n"].iloc[1] / table["flops_6n"].iloc[0])
    assert fit["slope_per_decade"] == pytest.approx(slope)
    assert out["trend"]["gap.gender"]["n_params"] is None  # one size: no trend in N


@pytest.mark.parametrize("setup, message", [
    (lambda tmp: ["--dimensions", "gender,colour"], "unknown lexicon dimension 'colour': expected one of age, gender"),
    (lambda tmp: ["--templates", str(write_jsonl(tmp / "t.jsonl", [{"dimension": "gender", "text": "A nurse worked."}]))],
     "line 1: text 'A nurse worked.' has no {group} slot"),
    (lambda tmp: ["--templates", str(write_jsonl(tmp / "t.jsonl", [{"dimension": "gender", "text": "{group} ran.",
                                                                    "fillers": {"femal": "she", "male": "he"}}]))],
     "unknown lexicon group 'femal' of dimension 'gender'"),
    (lambda tmp: ["--templates", str(write_jsonl(tmp / "t.jsonl", [{"dimension": "caste", "text": "{group} ran."}]))],
     "unknown lexicon dimension 'caste'"),
    (lambda tmp: ["--lexicon", str(tmp / "missing.yaml")], "missing.yaml: no such file"),
    (lambda tmp: ["--bootstrap", "5"], "--bootstrap=5: expected at least 10 resamples"),
])
def test_bad_input_is_one_line_naming_it(setup, message, tmp_path, capsys):
    run_dir = tmp_path / "no-such-run"  # the inputs are checked before any run is opened
    assert main(["audit", "bias", str(run_dir), *setup(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_a_missing_run_directory_is_one_line(tmp_path, capsys):
    assert main(["audit", "bias", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope" in err and "does not exist" in err and "\n" not in err


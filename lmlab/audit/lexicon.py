"""The lexicon and the counterfactual templates of a bias audit: loaded, merged and checked.

Lexicon (YAML): dimension -> group -> terms (conf/audit/lexicon.yaml). Templates (JSON lines,
conf/audit/templates.jsonl): {"dimension", "text" with a {group} slot, optional "fillers" (group
-> the words put in the slot; default: each group's first lexicon term), optional "stereotyped"
(the group whose variant is the stereotype)}. Users add their own files with the same shapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lmlab import CONF_DIR
from lmlab.errors import ConfigError

CONF_AUDIT = CONF_DIR / "audit"
SHIPPED_LEXICON = CONF_AUDIT / "lexicon.yaml"
SHIPPED_TEMPLATES = CONF_AUDIT / "templates.jsonl"
SLOT = "{group}"

Lexicon = dict[str, dict[str, list[str]]]


def load_lexicon(paths: list[str | Path] | None = None) -> Lexicon:
    """The lexicon files in order (a later file's dimension replaces an earlier one's)."""
    lexicon: Lexicon = {}
    for path in paths or [SHIPPED_LEXICON]:
        lexicon.update(_read_lexicon(Path(path)))
    return lexicon


def select(lexicon: Lexicon, templates: list[Template], dimensions: list[str] | None) -> tuple[Lexicon, list[Template]]:
    """The lexicon and templates of the named dimensions (all when None)."""
    if not dimensions:
        return lexicon, templates
    unknown = [d for d in dimensions if d not in lexicon]
    if unknown:
        raise ConfigError(f"unknown lexicon dimension {unknown[0]!r}: expected one of {', '.join(sorted(lexicon))}")
    return {d: lexicon[d] for d in dimensions}, [t for t in templates if t.dimension in dimensions]


def _read_lexicon(path: Path) -> Lexicon:
    import yaml

    if not path.is_file():
        raise ConfigError(f"lexicon {path}: no such file, expected a YAML file of dimension -> group -> terms")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"lexicon {path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"lexicon {path}: expected a mapping of dimension -> group -> list of terms")
    for dim, groups in data.items():
        if not isinstance(groups, dict) or len(groups) < 2:
            raise ConfigError(f"lexicon {path}: dimension {dim!r} must map at least two groups to their terms")
        for group, terms in groups.items():
            if not isinstance(terms, list) or not terms or not all(isinstance(t, str) and t.strip() for t in terms):
                raise ConfigError(f"lexicon {path}: {dim}.{group} must be a non-empty list of words, got {terms!r}")
    return {str(d): {str(g): [t.strip() for t in terms] for g, terms in groups.items()} for d, groups in data.items()}


@dataclass(frozen=True)
class Template:
    dimension: str
    text: str
    fillers: dict[str, str]  # group -> the words in the slot
    stereotyped: str | None = None
    where: str = field(default="", compare=False)  # "FILE line N", for errors

    def variants(self) -> dict[str, str]:
        """group -> the sentence with that group's filler in every slot."""
        return {group: self.text.replace(SLOT, words) for group, words in self.fillers.items()}


def load_templates(paths: list[str | Path] | None, lexicon: Lexicon) -> list[Template]:
    """Every template of the files, checked against the lexicon."""
    templates = []
    for path in paths or [SHIPPED_TEMPLATES]:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"templates {path}: no such file, expected JSON lines of counterfactual templates")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                templates.append(_parse_template(line, f"templates {path} line {number}", lexicon))
    return templates


def _parse_template(line: str, where: str, lexicon: Lexicon) -> Template:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{where}: not valid JSON ({err})") from None
    if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not isinstance(row.get("dimension"), str):
        raise ConfigError(f"{where}: expected an object with string fields 'dimension' and 'text'")
    dim, text = row["dimension"], row["text"]
    if SLOT not in text:
        raise ConfigError(f"{where}: text {text!r} has no {SLOT} slot, expected the place of the group term")
    if not text.split(SLOT, 1)[1].strip():
        raise ConfigError(f"{where}: nothing follows the {SLOT} slot in {text!r}; expected words after it to score")
    unknown_keys = sorted(set(row) - {"dimension", "text", "fillers", "stereotyped"})
    if unknown_keys:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown_keys)}; expected dimension, text, fillers, stereotyped")
    if dim not in lexicon:
        raise ConfigError(f"{where}: unknown lexicon dimension {dim!r}; expected one of {', '.join(sorted(lexicon))}")
    groups = lexicon[dim]
    fillers = row.get("fillers") or {g: terms[0] for g, terms in groups.items()}
    if not isinstance(fillers, dict) or len(fillers) < 2 or not all(isinstance(v, str) and v for v in fillers.values()):
        raise ConfigError(f"{where}: fillers must map at least two groups to the words of the slot, got {fillers!r}")
    for group in [*fillers, *([row["stereotyped"]] if row.get("stereotyped") is not None else [])]:
        if group not in groups:
            raise ConfigError(f"{where}: unknown lexicon group {group!r} of dimension {dim!r}; expected one of "
                              f"{', '.join(groups)}")
    stereotyped = row.get("stereotyped")
    if stereotyped is not None and stereotyped not in fillers:
        raise ConfigError(f"{where}: stereotyped group {stereotyped!r} has no filler; expected one of {', '.join(fillers)}")
    return Template(dim, text, dict(fillers), stereotyped, where)

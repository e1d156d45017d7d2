"""Tiny hand-written client files for tests: rows by field name, written as the client would."""

from __future__ import annotations

import gzip
from pathlib import Path

from phone_compliance import schema

DEFAULTS = {
    "agency_id": "AG01",
    "ssn": "078051120",
    "first_name": "Zelda",
    "last_name": "Quixote",
    "phone_type": "CELL",
    "phone_status": "ACTIVE",
    "phone_source": "CLIENT",
    "phone_technology": "WIRELESS",
    "quality_score": "80",
}


def ts(day: str, hhmmss: str = "060000", millis: str = "000") -> str:
    """A 17-digit file timestamp for a YYYY-MM-DD day."""
    return day.replace("-", "") + hhmmss + millis


def enrollment(account: str, phone: str, enrolled: str, letter: str = "P", **over: str) -> dict:
    """An ENRLMT row."""
    row = {
        "account_number": account,
        "consumer_legacy_identifier": account + letter,
        "phone_number": phone,
        "enrollment_date": enrolled,
        **DEFAULTS,
    }
    return {**row, **over}


def _bdl(account: str, phone: str, letter: str, consent: str, consent_date: str) -> dict:
    return {
        "cnsmr_idntfr_lgcy_txt": account + letter,
        "cnsmr_idntfr_agncy_id": DEFAULTS["agency_id"],
        "cnsmr_idntfr_ssn_txt": DEFAULTS["ssn"],
        "cnsmr_nm_frst_txt": DEFAULTS["first_name"],
        "cnsmr_nm_lst_txt": DEFAULTS["last_name"],
        "cnsmr_phn_nmbr_txt": phone,
        "cnsmr_phn_typ_val_txt": DEFAULTS["phone_type"],
        "cnsmr_phn_stts_val_txt": DEFAULTS["phone_status"],
        "cnsmr_phn_src_val_txt": DEFAULTS["phone_source"],
        "cnsmr_phn_tchnlgy_typ_val_txt": DEFAULTS["phone_technology"],
        "cnsmr_phn_qlty_score_nmbr": DEFAULTS["quality_score"],
        "cnsmr_phn_cnsnt_flg": consent,
        "cnsmr_phn_cnsnt_dt": consent_date,
    }


def snapshot(
    account: str, phone: str, consent: str = "", consent_date: str = "", letter: str = "P", **over
) -> dict:
    """A NON-FIN-BDL row."""
    return {"cnsmr_phn_id": "1", **_bdl(account, phone, letter, consent, consent_date), **over}


def change(
    account: str,
    phone: str,
    record_date: str,
    deleted: str = "N",
    consent: str = "",
    consent_date: str = "",
    letter: str = "P",
    **over,
) -> dict:
    """A SUPPLFWD row."""
    row = {
        "cnsmr_phn_hst_id": "1",
        **_bdl(account, phone, letter, consent, consent_date),
        "cnsmr_phn_sft_dlt_flg": deleted,
        "record_date": record_date,
    }
    return {**row, **over}


def line(family: schema.Family, row: dict | str, columns: tuple[str, ...] | None = None) -> str:
    """One delivered line: a dict in header order, or a raw string as given."""
    if isinstance(row, str):
        return row
    return "|".join(row.get(c, "") for c in (columns or family.columns))


def write(
    landing: Path,
    family: schema.Family,
    day: str,
    rows: list[dict | str],
    seq: int = 1,
    stamp: str | None = None,
    columns: tuple[str, ...] | None = None,
    line_end: str = "\n",
) -> Path:
    """Write a gzip client file of `family` for `day` into the landing folder; return its path."""
    path = landing / family.folder / schema.file_name(family, stamp or ts(day), seq)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "|".join(columns or family.columns)
    text = line_end.join([header, *[line(family, r, columns) for r in rows]]) + line_end
    path.write_bytes(gzip.compress(text.encode(), mtime=0))
    return path


# Three accounts on one phone: the small history several graph tests run.
A, B, C = "1234567890123456", "6543210987654321", "1111222233334444"
PHONE = "2125550123"


def small_history(landing: Path) -> None:
    """A enrolled and consenting, B deleted by a change, C only in the snapshot, and one line
    the snapshot rejects (FIELD_COUNT): four files' worth of every rule kind in a few rows."""
    write(landing, schema.ENROLLMENT, "2020-01-05", [enrollment(A, PHONE, "2020-01-03")])
    write(
        landing,
        schema.SNAPSHOT,
        "2020-02-01",
        [
            snapshot(A, PHONE, "Y", "2020-01-20"),
            snapshot(B, PHONE),
            snapshot(C, PHONE),
            "not|enough|fields",
        ],
    )
    write(landing, schema.CHANGE, "2020-02-08", [change(B, PHONE, "2020-02-05", deleted="Y")])

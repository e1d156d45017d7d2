"""A small, obviously correct pure-Python model of SPEC §4–§7, the judge of the Spark pipeline.

It reads the SPEC literally: it enumerates evidence (absences included, snapshot by snapshot) and
applies each rule in the words of the SPEC. It is slow on purpose; clarity is its only job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from phone_compliance import schema

ENRLMT, SNAPSHOT, SUPPLFWD = "ENRLMT", "NON-FIN-BDL", "SUPPLFWD"
RANK = {ENRLMT: 1, SNAPSHOT: 2, SUPPLFWD: 3}
FAMILY = {ENRLMT: schema.ENROLLMENT, SNAPSHOT: schema.SNAPSHOT, SUPPLFWD: schema.CHANGE}


@dataclass(frozen=True)
class Row:
    """One accepted delivered row, as the model sees it."""

    family: str
    file_name: str
    file_date: date
    file_ts: str
    fields: dict

    def get(self, ours: str) -> str:
        """A common field by our name (schema.COMMON_FIELDS), from this family's column."""
        return self.fields.get(schema.common_field(FAMILY[self.family], ours), "").strip()


def phone_e164(raw: str) -> str | None:
    """R3, literally."""
    digits = re.sub(r"\D", "", raw)
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    if len(digits) == 10 and digits[0] in "23456789" and digits[3] in "23456789":
        return "+1" + digits
    return None


def pair_of(row: Row) -> tuple[str, str]:
    """R2 + R3 + R4: the pair a row is evidence for."""
    return row.get("legacy_id")[:16], phone_e164(row.get("phone_raw"))


def evidence_date(row: Row) -> date:
    """SPEC §4's date column."""
    if row.family == ENRLMT:
        return date.fromisoformat(row.fields["enrollment_date"].strip())
    if row.family == SNAPSHOT:
        return row.file_date
    return date.fromisoformat(row.fields["record_date"].strip())


def row_text(row: Row) -> str:
    """The delivered row in canonical order with personal fields blanked (R8's last tie-break)."""
    cols = FAMILY[row.family].columns
    return "|".join(
        "" if c in schema.PERSONAL_FIELDS else row.fields.get(c, "").strip() for c in cols
    )


def decide(rows: list[Row], snapshot_dates: set[date]) -> dict[tuple[str, str], dict]:
    """Gold's decision fields for every pair the rows mention."""
    by_pair: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        by_pair.setdefault(pair_of(row), []).append(row)
    return {pair: _decide_pair(pair_rows, snapshot_dates) for pair, pair_rows in by_pair.items()}


def _decide_pair(rows: list[Row], snapshot_dates: set[date]) -> dict:
    # SPEC §4: present and soft-deleted evidence.
    present, soft = [], []
    for r in rows:
        is_soft = r.family == SUPPLFWD and r.fields["cnsmr_phn_sft_dlt_flg"].strip() == "Y"
        (soft if is_soft else present).append(evidence_date(r))
    in_snapshot = {r.file_date for r in rows if r.family == SNAPSHOT}

    # R5/R6/R7.
    if present:
        p = max(present)
        absent = [s for s in snapshot_dates if s >= p and s not in in_snapshot]
        deletions = [(d, "soft") for d in soft if d >= p] + [(d, "hard") for d in absent]
    else:
        deletions = [(min(soft), "soft")]
    if deletions:
        deleted_at = min(d for d, _ in deletions)
        kinds = {k for d, k in deletions if d == deleted_at}
        delete_type = schema.SOFT_DELETE if "soft" in kinds else schema.HARD_DELETE
    else:
        deleted_at, delete_type = None, None

    # R8: the latest row by date, rank, file timestamp, row text.
    latest = max(rows, key=lambda r: (evidence_date(r), RANK[r.family], r.file_ts, row_text(r)))
    score = latest.get("quality_score_raw")
    quality = int(score) if score.isdigit() and 1 <= int(score) <= 100 else None

    # R9: latest consent date, N winning a tie; no observation means NULL.
    observations = []
    for r in rows:
        flag = r.fields.get("cnsmr_phn_cnsnt_flg", "").strip()
        if r.family != ENRLMT and flag in ("Y", "N"):
            text = r.fields["cnsmr_phn_cnsnt_dt"].strip()
            observations.append((date.fromisoformat(text) if text else evidence_date(r), flag))
    if observations:
        consent_date, flag = max(observations, key=lambda o: (o[0], o[1] == "N"))
        consent = flag == "Y"
    else:
        consent_date, consent = None, None

    # R10.
    source = latest.get("phone_source")
    is_deleted = deleted_at is not None
    if source != schema.CLIENT_SOURCE:
        reason = schema.NOT_CLIENT_SOURCED
    elif is_deleted:
        reason = schema.DELETED
    elif consent is False:
        reason = schema.CONSENT_WITHDRAWN
    else:
        reason = schema.ALLOWED
    return {
        "phone_source": source,
        "phone_type": latest.get("phone_type"),
        "phone_status": latest.get("phone_status"),
        "phone_technology": latest.get("phone_technology"),
        "quality_score": quality,
        "has_sms_consent": consent,
        "sms_consent_updated_at": consent_date,
        "is_deleted": is_deleted,
        "delete_type": delete_type,
        "deleted_at": deleted_at,
        "can_send_sms": reason == schema.ALLOWED,
        "reason": reason,
    }


# --- Reading the delivered files, independently of the pipeline (R1, simply) ---------------


def _valid_date(text: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _accepted(family: str, f: dict) -> bool:
    """R1.1 in plain Python."""
    legacy = f.get(schema.common_field(FAMILY[family], "legacy_id"))
    if not re.fullmatch(r"\d{16}[A-Z]", legacy):
        return False
    phone = f.get(schema.common_field(FAMILY[family], "phone_raw"))
    if phone_e164(phone) is None:
        return False
    if family == ENRLMT:
        return f["account_number"] == legacy[:16] and _valid_date(f["enrollment_date"])
    if f["cnsmr_phn_cnsnt_flg"] not in ("Y", "N", ""):
        return False
    if f["cnsmr_phn_cnsnt_dt"] and not _valid_date(f["cnsmr_phn_cnsnt_dt"]):
        return False
    if family == SUPPLFWD:
        return f["cnsmr_phn_sft_dlt_flg"] in ("Y", "N") and _valid_date(f["record_date"])
    return True


def rows_from_files(landing) -> tuple[list[Row], set[date]]:
    """Accepted rows of every readable file under `landing`, and the snapshot dates (R6)."""
    import csv
    import gzip
    import io
    from pathlib import Path

    rows, snapshot_dates = [], set()
    for path in sorted(Path(landing).glob("*/*")):
        parsed = schema.parse_file_name(path.name)
        if parsed is None:
            continue
        try:
            text = gzip.decompress(path.read_bytes()).decode()
        except (OSError, EOFError):
            continue
        lines = text.splitlines()
        if not lines:
            continue
        header = [h.strip() for h in lines[0].split("|")]
        if sorted(header) != sorted(parsed.family.columns):
            continue
        family = parsed.family.token
        if family == SNAPSHOT:
            snapshot_dates.add(date.fromisoformat(parsed.file_date))
        for values in csv.reader(io.StringIO("\n".join(lines[1:])), delimiter="|", quotechar='"'):
            if len(values) != len(header):
                continue
            fields = {h: v.strip() for h, v in zip(header, values, strict=True)}
            if _accepted(family, fields):
                rows.append(
                    Row(
                        family,
                        path.name,
                        date.fromisoformat(parsed.file_date),
                        parsed.file_ts,
                        fields,
                    )
                )
    return rows, snapshot_dates

"""One pair's audit for counsel (R14): its evidence, its decision history, its publications.

- **evidence**: every accepted Bronze row of the pair (ENRLMT, NON-FIN-BDL, SUPPLFWD) and every
  rejected row whose account and phone still read as the pair (R1.2), in file order;
- **decisions** (business time): the pair's `gold/decision_history` intervals (R14);
- **publications** (system time): the pair's `gold/decision_changes` rows, by Gold version.

Read with delta-rs and pyarrow, one pass per table with the pair pushed down as a filter (and,
per publication, one row for its files): no Spark, no Dagster, seconds for one pair of a
20-million-row Bronze.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from phone_compliance import schema
from phone_compliance.keys import (
    ACCOUNT_RE,
    LEGACY_ID_RE,
    InvalidKey,
    normalize_account,
    normalize_phone,
)
from phone_compliance.lakehouse.locations import Locations

SECTIONS = ("evidence", "decisions", "publications")
REPORT_FORMATS = (".csv", ".parquet")
ACCEPTED = "accepted"
REJECTED = "rejected"
REJECTS_TABLE = ("bronze", "rejects")
HISTORY_TABLE = ("gold", "decision_history")
CHANGES_TABLE = ("gold", "decision_changes")

# One evidence row: where it is, whether Bronze took it, and the fields R4-R9 judge. A rejected
# row's fields are read from its delivered text (a value that is not of its type is NULL: the
# reason says what was wrong); names and SSN never leave the rejects table.
EVIDENCE = pa.schema(
    [
        ("status", pa.string()),  # accepted | rejected
        ("family", pa.string()),  # schema.Family.name
        ("source_file", pa.string()),
        ("file_date", pa.date32()),
        ("file_ts", pa.string()),
        ("line_number", pa.int64()),
        ("evidence_date", pa.date32()),  # R4: enrollment date, snapshot file date, record date
        ("consumer_type", pa.string()),
        ("phone_source", pa.string()),
        ("phone_type", pa.string()),
        ("phone_status", pa.string()),
        ("phone_technology", pa.string()),
        ("quality_score", pa.int32()),
        ("consent_flag", pa.string()),
        ("consent_date", pa.date32()),
        ("soft_delete_flag", pa.string()),
        ("reject_reason", pa.string()),
    ]
)
# One decision interval (R14): [valid_from, valid_to), the decision, its facts and its files.
DECISIONS = pa.schema(
    [
        ("valid_from", pa.date32()),
        ("valid_to", pa.date32()),
        ("can_send_sms", pa.bool_()),
        ("reason", pa.string()),
        ("phone_source", pa.string()),
        ("is_deleted", pa.bool_()),
        ("delete_type", pa.string()),
        ("deleted_at", pa.date32()),
        ("has_sms_consent", pa.bool_()),
        ("sms_consent_updated_at", pa.date32()),
        ("latest_present_date", pa.date32()),
        ("attributes_file", pa.string()),
        ("presence_file", pa.string()),
        ("deletion_file", pa.string()),
        ("consent_file", pa.string()),
    ]
)
# One publication that changed the pair (schema.DECISION_CHANGES without the key).
PUBLICATIONS = pa.schema(
    [
        ("gold_version", pa.int64()),
        ("published_at", pa.timestamp("us", tz="UTC")),
        ("run_id", pa.string()),
        ("refresh", pa.string()),
        ("ledger_version", pa.int64()),
        ("change", pa.string()),
        ("old_can_send_sms", pa.bool_()),
        ("old_reason", pa.string()),
        ("new_can_send_sms", pa.bool_()),
        ("new_reason", pa.string()),
        ("run_files", pa.list_(pa.string())),
    ]
)
SCHEMAS = {"evidence": EVIDENCE, "decisions": DECISIONS, "publications": PUBLICATIONS}

# The Bronze columns each family contributes to EVIDENCE (the evidence date aside).
_LINEAGE = ["source_file", "file_date", "file_ts", "line_number"]
_ATTRIBUTES = ["consumer_type", *schema.names(schema.ATTRIBUTES)]
_CONSENT = ["consent_flag", "consent_date"]
_BRONZE_COLUMNS = {
    schema.ENROLLMENT.name: [*_LINEAGE, *_ATTRIBUTES, "enrollment_date"],
    schema.SNAPSHOT.name: [*_LINEAGE, *_ATTRIBUTES, *_CONSENT],
    schema.CHANGE.name: [*_LINEAGE, *_ATTRIBUTES, *_CONSENT, "soft_delete_flag", "record_date"],
}
# The attributes (R8) a rejected line holds as text, the quality score aside.
_DESCRIPTIVE = ("phone_type", "phone_status", "phone_source", "phone_technology")
# R4: the date of each family's evidence (the snapshot's is its file date).
_EVIDENCE_DATE = {
    schema.ENROLLMENT.name: "enrollment_date",
    schema.SNAPSHOT.name: "file_date",
    schema.CHANGE.name: "record_date",
}


class NoTables(LookupError):
    """The warehouse holds none of the tables an audit reads: nothing was ever built there."""


class ReportFormatError(ValueError):
    """A report path whose extension is neither .csv nor .parquet."""


@dataclass(frozen=True)
class Audit:
    """What the warehouse holds about one pair. A part is None when its tables do not exist
    (never built, or not yet: `gold/decision_changes` is newer than the rest); [] when they exist
    and hold nothing of the pair."""

    account_number: str
    phone_number: str
    warehouse: str
    evidence: list[dict[str, Any]] | None
    decisions: list[dict[str, Any]] | None
    publications: list[dict[str, Any]] | None

    def to_dict(self) -> dict[str, Any]:
        """The audit as JSON-ready values (dates and times in ISO 8601)."""
        return {
            "account_number": self.account_number,
            "phone_number": self.phone_number,
            "warehouse": self.warehouse,
            **{
                section: None if rows is None else [_jsonable(row) for row in rows]
                for section, rows in self._sections().items()
            },
        }

    def table(self) -> pa.Table:
        """All three parts as one flat table: a `section` column, then the union of the parts'
        columns (NULL where a column is not the row's section's)."""
        columns = _union(SCHEMAS.values())
        rows = [
            {"section": section, **row}
            for section, part in self._sections().items()
            for row in part or []
        ]
        return pa.Table.from_pylist(
            rows, schema=pa.schema([pa.field("section", pa.string()), *columns])
        )

    def explain(self) -> str:
        """The audit for a terminal: three titled sections."""
        return "\n".join(
            [
                f"Audit of account {self.account_number}, phone {self.phone_number}",
                f"warehouse {self.warehouse}",
                "",
                *_evidence_lines(self.evidence),
                "",
                *_decision_lines(self.decisions),
                "",
                *_publication_lines(self.publications),
            ]
        )

    def _sections(self) -> dict[str, list[dict[str, Any]] | None]:
        return {s: getattr(self, s) for s in SECTIONS}


def audit(locations: Locations, account: str, phone: str) -> Audit:
    """The audit of the pair (`account`, `phone`), both normalized first (R11: InvalidKey when
    they cannot be). NoTables when the warehouse holds none of the tables read."""
    account, phone = normalize_account(account), normalize_phone(phone)
    pair = (pc.field("account_number") == account) & (pc.field("phone_number") == phone)
    accepted = [_accepted(locations, family, pair) for family in schema.FAMILIES]
    rejected = _rejected(locations, account, phone)
    found = [part for part in (*accepted, rejected) if part is not None]
    evidence = None if not found else sorted((r for p in found for r in p), key=_file_order)
    decisions = _rows(locations, HISTORY_TABLE, DECISIONS, pair, "valid_from")
    publications = _publications(locations, pair)
    warehouse = locations.settings.warehouse
    if evidence is None and decisions is None and publications is None:
        raise NoTables(f"no Bronze or Gold table under {warehouse}: nothing to audit")
    return Audit(account, phone, warehouse, evidence, decisions, publications)


def report_format(path: str | Path) -> str:
    """The report format of `path` by its extension (.csv or .parquet), else ReportFormatError."""
    suffix = Path(path).suffix.lower()
    if suffix not in REPORT_FORMATS:
        raise ReportFormatError(
            f"report {str(path)!r}: the extension must be .csv or .parquet, not {suffix!r}"
        )
    return suffix


def write_report(result: Audit, path: str | Path) -> int:
    """Write the audit's flat table (`Audit.table`) as CSV or Parquet, by the path's extension,
    and return its rows; in CSV a publication's `run_files` are one cell, separated by `;`."""
    import pyarrow.csv as pa_csv

    fmt = report_format(path)
    table = result.table()
    if fmt == ".parquet":
        pq.write_table(table, path)
    else:
        at = table.schema.get_field_index("run_files")
        joined = pc.binary_join(table.column(at), ";")
        pa_csv.write_csv(table.set_column(at, "run_files", joined), path)
    return table.num_rows


# --- Reading -------------------------------------------------------------------------------


def _dataset(locations: Locations, path: tuple[str, ...]):
    """The Delta table at `path` as a pyarrow dataset (its current version); None when absent."""
    location, options = locations.delta_rs(locations.table_of(path))
    try:
        return DeltaTable(location, storage_options=options).to_pyarrow_dataset()
    except TableNotFoundError:
        return None


def _rows(
    locations: Locations, path: tuple[str, ...], shape: pa.Schema, pair: pc.Expression, order: str
) -> list[dict[str, Any]] | None:
    """The pair's rows of a table keyed by pair, `shape`'s columns, sorted by `order`."""
    dataset = _dataset(locations, path)
    if dataset is None:
        return None
    table = dataset.to_table(columns=shape.names, filter=pair)
    return table.cast(shape).sort_by(order).to_pylist()


def _publications(locations: Locations, pair: pc.Expression) -> list[dict[str, Any]] | None:
    """The pair's rows of `gold/decision_changes`, by Gold version."""
    return _rows(locations, CHANGES_TABLE, PUBLICATIONS, pair, "gold_version")


def _accepted(
    locations: Locations, family: schema.Family, pair: pc.Expression
) -> list[dict[str, Any]] | None:
    """The pair's accepted rows of one Bronze family, as EVIDENCE rows."""
    dataset = _dataset(locations, ("bronze", family.name))
    if dataset is None:
        return None
    rows = dataset.to_table(columns=_BRONZE_COLUMNS[family.name], filter=pair).to_pylist()
    return [_evidence(row, ACCEPTED, family) for row in rows]


def _rejected(locations: Locations, account: str, phone: str) -> list[dict[str, Any]] | None:
    """The rejected rows whose delivered account and phone read as the pair, as EVIDENCE rows.
    Only lines holding the account's 16 digits are parsed: R2 trims an account and changes
    nothing else, so every line whose account reads as this one holds them."""
    dataset = _dataset(locations, REJECTS_TABLE)
    if dataset is None:
        return None
    candidates = dataset.to_table(
        columns=["source_file", "family", "file_date", "line_number", "raw_text", "reason"],
        filter=(pc.field("line_number") > 0) & pc.match_substring(pc.field("raw_text"), account),
    ).to_pylist()
    out = []
    for row in candidates:
        family = schema.FAMILY_BY_NAME.get(row["family"])
        read = _read_line(family, row["raw_text"]) if family else None
        if read is None or read[0] != (account, phone):
            continue
        name = schema.parse_file_name(Path(row["source_file"]).name)
        lineage = {
            "source_file": row["source_file"],
            "file_date": row["file_date"],
            "file_ts": name.file_ts if name else None,
            "line_number": row["line_number"],
        }
        out.append(_evidence({**lineage, **read[1]}, REJECTED, family, row["reason"]))
    return out


def _evidence(
    row: dict[str, Any], status: str, family: schema.Family, reject_reason: str | None = None
) -> dict[str, Any]:
    """An EVIDENCE row from a Bronze row (or a rejected line's fields) and its lineage."""
    values = {
        **row,
        "status": status,
        "family": family.name,
        "evidence_date": row.get(_EVIDENCE_DATE[family.name]),
        "reject_reason": reject_reason,
    }
    return {name: values.get(name) for name in EVIDENCE.names}


def _file_order(row: dict[str, Any]) -> tuple:
    """Evidence order: file date, file timestamp, file name, line."""
    return (row["file_date"], row["file_ts"] or "", row["source_file"], row["line_number"])


# --- A rejected row's delivered text ----------------------------------------------------------


def _read_line(
    family: schema.Family, raw_text: str
) -> tuple[tuple[str, str] | None, dict[str, Any]] | None:
    """A rejected line's pair (R2, R3; None when its account or phone cannot be read) and the
    fields that matter to the audit, trimmed (R1); a value not of its type (a date, a score) is
    None. Read in the family's column order: rejects keep the line, not its file's header. None
    when the line has too few fields to reach its phone."""
    try:
        delivered = next(csv.reader([raw_text.rstrip("\r\n")], delimiter="|", quotechar='"'))
    except (csv.Error, StopIteration):
        return None
    values = dict(zip(family.columns, (v.strip() for v in delivered), strict=False))
    if schema.common_field(family, "phone_raw") not in values:
        return None
    legacy = LEGACY_ID_RE.match(values.get(schema.common_field(family, "legacy_id"), ""))
    fields: dict[str, Any] = {
        **{n: values.get(schema.common_field(family, n)) for n in _DESCRIPTIVE},
        "quality_score": _score(values.get(schema.common_field(family, "quality_score_raw"))),
        "consent_flag": values.get("cnsmr_phn_cnsnt_flg"),
        "consent_date": _date(values.get("cnsmr_phn_cnsnt_dt")),
        "soft_delete_flag": values.get("cnsmr_phn_sft_dlt_flg"),
        "enrollment_date": _date(values.get("enrollment_date")),
        "record_date": _date(values.get("record_date")),
    }
    # R2: ENRLMT's account is its own column; the others' the legacy identifier less its letter.
    if family is schema.ENROLLMENT:
        account = values.get("account_number", "")
    else:
        account = legacy.group(1) if legacy else ""
    # R4: the consumer's letter, when the legacy identifier is this account's
    fields["consumer_type"] = legacy.group(2) if legacy and legacy.group(1) == account else None
    try:
        phone = normalize_phone(values[schema.common_field(family, "phone_raw")])
    except InvalidKey:
        return None, fields
    return ((account, phone) if ACCOUNT_RE.match(account) else None), fields


def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text and len(text) == 10 else None
    except ValueError:
        return None


def _score(text: str | None) -> int | None:
    """R1.1: a quality score is an integer from 1 to 100; anything else is NULL."""
    return (
        int(text) if text and text.isascii() and text.isdigit() and 1 <= int(text) <= 100 else None
    )


# --- Output ----------------------------------------------------------------------------------


def _union(schemas) -> list[pa.Field]:
    """The union of the schemas' fields by name, in first-seen order (a shared name has one
    type in every part)."""
    fields: dict[str, pa.Field] = {}
    for shape in schemas:
        for field in shape:
            seen = fields.setdefault(field.name, field)
            assert seen.type == field.type, (field.name, seen.type, field.type)
    return list(fields.values())


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def _pairs(**fields: Any) -> str:
    """`name=value` for each field that has a value."""
    return " ".join(f"{k}={_show(v)}" for k, v in fields.items() if v is not None)


def _evidence_lines(rows: list[dict[str, Any]] | None) -> list[str]:
    title = "Evidence (Bronze: accepted rows, and rejected rows read as this pair)"
    if rows is None:
        return [title, "  no Bronze table recorded"]
    if not rows:
        return [title, "  no row of this pair in any delivered file"]
    rejected = sum(r["status"] == REJECTED for r in rows)
    lines = [f"{title}: {len(rows) - rejected} accepted, {rejected} rejected"]
    for r in rows:
        token = schema.FAMILY_BY_NAME[r["family"]].token
        status = f"REJECTED {r['reject_reason']}" if r["status"] == REJECTED else ACCEPTED
        lines.append(
            f"  {r['file_date']}  {token:<11} {status}  {r['source_file']}:{r['line_number']}"
        )
        facts = _pairs(
            date=r["evidence_date"],
            source=r["phone_source"],
            consent=r["consent_flag"] or None,
            consent_date=r["consent_date"],
            soft_delete=r["soft_delete_flag"],
            type=r["phone_type"] or None,
            status=r["phone_status"] or None,
            technology=r["phone_technology"] or None,
            score=r["quality_score"],
            consumer=r["consumer_type"],
        )
        lines.append(f"      {facts}")
    return lines


def _decision_lines(rows: list[dict[str, Any]] | None) -> list[str]:
    title = "Decisions (R14, business time: file dates)"
    if rows is None:
        return [title, "  no decision history recorded"]
    if not rows:
        return [title, "  never decided: NOT_FOUND on every date"]
    lines = [f"{title}: {len(rows)} interval(s)"]
    for r in rows:
        until = r["valid_to"] or "now"
        verdict = "may be sent" if r["can_send_sms"] else "must NOT be sent"
        lines.append(f"  [{r['valid_from']}, {until})  {r['reason']}: {verdict}")
        facts = _pairs(
            source=r["phone_source"],
            deleted=r["is_deleted"],
            delete_type=r["delete_type"],
            deleted_at=r["deleted_at"],
            consent="implicit" if r["has_sms_consent"] is None else r["has_sms_consent"],
            consent_date=r["sms_consent_updated_at"],
            latest_present=r["latest_present_date"],
        )
        lines.append(f"      {facts}")
        for role in ("attributes", "presence", "deletion", "consent"):
            if r[f"{role}_file"]:
                lines.append(f"      {role + ' file:':<17} {r[f'{role}_file']}")
    return lines


def _publication_lines(rows: list[dict[str, Any]] | None) -> list[str]:
    title = "Publications (system time: Gold versions that changed this pair)"
    if rows is None:
        return [title, "  no publication recorded (gold/decision_changes does not exist)"]
    if not rows:
        return [title, "  no publication recorded for this pair"]
    lines = [f"{title}: {len(rows)}"]
    for r in rows:
        before = r["old_reason"] or "(new pair)"
        after = r["new_reason"] or "(left Gold)"
        lines.append(
            f"  Gold v{r['gold_version']}  {_show(r['published_at'])}  {r['change']}: "
            f"{before} -> {after}"
        )
        files = r["run_files"] or []
        shown = ", ".join(files[:3]) + (f", ... ({len(files)} files)" if len(files) > 3 else "")
        lines.append(f"      run {_show(r['run_id'])}; files: {shown or '-'}")
    return lines

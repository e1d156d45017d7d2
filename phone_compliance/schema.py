"""The one place for file formats, column names, domains and table schemas (SPEC §1, §4–§7).

Pure Python on purpose: `datagen` and the decision service import it without a JVM.
Spark turns the DDL strings below into StructTypes; pyarrow readers use the names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

# --- SPEC §1: the three file families -------------------------------------------------


@dataclass(frozen=True)
class Family:
    """One client file family: where it lands, how it is named, what its header holds."""

    name: str  # our table-side name
    token: str  # the token in the file name that identifies the family (SPEC §1)
    folder: str
    prefix: str  # the usual prefix; matching never relies on it
    infix: str  # what follows {TS} in the name, before the sequence number
    columns: tuple[str, ...]
    source_rank: int  # SPEC §4


ENROLLMENT_COLUMNS = (
    "account_number",
    "consumer_legacy_identifier",
    "agency_id",
    "ssn",
    "first_name",
    "last_name",
    "phone_number",
    "phone_type",
    "phone_technology",
    "phone_status",
    "phone_source",
    "quality_score",
    "enrollment_date",
)

SNAPSHOT_COLUMNS = (
    "cnsmr_phn_id",
    "cnsmr_idntfr_lgcy_txt",
    "cnsmr_idntfr_agncy_id",
    "cnsmr_idntfr_ssn_txt",
    "cnsmr_nm_frst_txt",
    "cnsmr_nm_lst_txt",
    "cnsmr_phn_nmbr_txt",
    "cnsmr_phn_typ_val_txt",
    "cnsmr_phn_stts_val_txt",
    "cnsmr_phn_src_val_txt",
    "cnsmr_phn_tchnlgy_typ_val_txt",
    "cnsmr_phn_qlty_score_nmbr",
    "cnsmr_phn_cnsnt_flg",
    "cnsmr_phn_cnsnt_dt",
)

CHANGE_COLUMNS = (
    "cnsmr_phn_hst_id",
    *SNAPSHOT_COLUMNS[1:],
    "cnsmr_phn_sft_dlt_flg",
    "record_date",
)

ENROLLMENT = Family(
    name="enrollment",
    token="ENRLMT",
    folder="ENROLLMENT",
    prefix="IC_A2RGMRHG_DMENRL_DataManager",
    infix="ENRLMT-EXPORT",
    columns=ENROLLMENT_COLUMNS,
    source_rank=1,
)
SNAPSHOT = Family(
    name="nonfin_snapshot",
    token="NON-FIN-BDL",
    folder="MAINTENANCE",
    prefix="SN_SVC_DMBDL_DataManager",
    infix="NON-FIN-BDL_EXPORT",
    columns=SNAPSHOT_COLUMNS,
    source_rank=2,
)
CHANGE = Family(
    name="supplfwd_change",
    token="SUPPLFWD",
    folder="MAINTENANCE",
    prefix="SN_SVC_DMBDL_DataManager",
    infix="SUPPLFWD-BDL_EXPORT",
    columns=CHANGE_COLUMNS,
    source_rank=3,
)
FAMILIES: tuple[Family, ...] = (ENROLLMENT, SNAPSHOT, CHANGE)
FAMILY_BY_NAME = {f.name: f for f in FAMILIES}

# The delivered columns every family has, under our names: (ENRLMT's, the MAINTENANCE families').
COMMON_FIELDS = {
    "legacy_id": ("consumer_legacy_identifier", "cnsmr_idntfr_lgcy_txt"),
    "agency_id": ("agency_id", "cnsmr_idntfr_agncy_id"),
    "ssn": ("ssn", "cnsmr_idntfr_ssn_txt"),
    "phone_raw": ("phone_number", "cnsmr_phn_nmbr_txt"),
    "phone_type": ("phone_type", "cnsmr_phn_typ_val_txt"),
    "phone_status": ("phone_status", "cnsmr_phn_stts_val_txt"),
    "phone_source": ("phone_source", "cnsmr_phn_src_val_txt"),
    "phone_technology": ("phone_technology", "cnsmr_phn_tchnlgy_typ_val_txt"),
    "quality_score_raw": ("quality_score", "cnsmr_phn_qlty_score_nmbr"),
}


def common_field(family: Family, ours: str) -> str:
    """The delivered column of `family` that holds the common field `ours`."""
    return COMMON_FIELDS[ours][0 if family is ENROLLMENT else 1]


# Delivered columns that never leave Bronze's parser (names) or leave it only hashed (SSN).
PERSONAL_FIELDS = frozenset(
    {
        "ssn",
        "first_name",
        "last_name",
        "cnsmr_idntfr_ssn_txt",
        "cnsmr_nm_frst_txt",
        "cnsmr_nm_lst_txt",
    }
)

# {TS} is 17 digits (YYYYMMDDHHMMSS + milliseconds); the family is matched by token only.
FILE_NAME_RE = re.compile(r"^(?P<prefix>.*?)-(?P<ts>\d{17})-(?P<rest>.+)_(?P<seq>\d+)\.csv\.gz$")


@dataclass(frozen=True)
class FileName:
    """What a client file's name says: its family, file date and file timestamp (SPEC §1)."""

    family: Family
    file_ts: str  # all 17 digits
    file_date: str  # YYYY-MM-DD, from the first 8 digits
    seq: int


def file_name(family: Family, ts: str, seq: int) -> str:
    """The name the client gives a file of `family` stamped `ts` (17 digits)."""
    return f"{family.prefix}-{ts}-{family.infix}_{seq:03d}.csv.gz"


def parse_file_name(name: str) -> FileName | None:
    """Family and dates of a client file name, or None when the name is not recognised: no
    single family token, or a timestamp that is not a real date and time (R1.3)."""
    m = FILE_NAME_RE.match(name)
    if not m:
        return None
    rest = m.group("rest")
    found = [f for f in FAMILIES if f.token in rest]
    if len(found) != 1:
        return None
    ts, seq = m.group("ts"), m.group("seq")
    if not (ts.isascii() and seq.isascii()):  # `\d` also matches other scripts' digits
        return None
    try:  # YYYYMMDDHHMMSS must be a real moment: not 2019-13-99, not 25:00
        datetime(int(ts[:4]), *(int(ts[at : at + 2]) for at in range(4, 14, 2)))
    except ValueError:
        return None
    file_date = f"{ts[0:4]}-{ts[4:6]}-{ts[6:8]}"
    return FileName(family=found[0], file_ts=ts, file_date=file_date, seq=int(seq))


# --- SPEC §1 domains ---------------------------------------------------------------------

PHONE_TYPES = ("CELL", "HOME", "WORK", "OTHER")
PHONE_STATUSES = ("ACTIVE", "INACTIVE", "DISCONNECTED")
PHONE_SOURCES = ("CLIENT", "CONSUMER", "THIRD_PARTY", "OTHER")
PHONE_TECHNOLOGIES = ("WIRELESS", "LANDLINE", "VOIP")
CONSENT_FLAGS = ("Y", "N", "")
SOFT_DELETE_FLAGS = ("Y", "N")
CLIENT_SOURCE = "CLIENT"

# --- R1: reject reason codes ---------------------------------------------------------------

# Row rejects (R1.1)
REJECT_FIELD_COUNT = "FIELD_COUNT"
REJECT_ACCOUNT = "BAD_ACCOUNT_NUMBER"
REJECT_LEGACY_ID = "BAD_LEGACY_IDENTIFIER"
REJECT_ACCOUNT_MISMATCH = "ACCOUNT_LEGACY_MISMATCH"
REJECT_PHONE = "BAD_PHONE_NUMBER"
REJECT_DATE = "BAD_DATE"
REJECT_CONSENT_FLAG = "BAD_CONSENT_FLAG"
REJECT_SOFT_DELETE_FLAG = "BAD_SOFT_DELETE_FLAG"
ROW_REJECT_REASONS = (
    REJECT_FIELD_COUNT,
    REJECT_LEGACY_ID,
    REJECT_ACCOUNT,
    REJECT_ACCOUNT_MISMATCH,
    REJECT_PHONE,
    REJECT_DATE,
    REJECT_CONSENT_FLAG,
    REJECT_SOFT_DELETE_FLAG,
)
# Whole-file rejects (R1.3)
FILE_BAD_GZIP = "FILE_BAD_GZIP"
FILE_NO_HEADER = "FILE_NO_HEADER"
FILE_BAD_HEADER = "FILE_UNKNOWN_HEADER"
FILE_BAD_NAME = "FILE_UNRECOGNISED_NAME"
FILE_REJECT_REASONS = (FILE_BAD_GZIP, FILE_NO_HEADER, FILE_BAD_HEADER, FILE_BAD_NAME)
# Any other failure to read a file (R1.3). Not in FILE_REJECT_REASONS, the codes a delivered
# file's bytes and name can earn (datagen plants each): no known content leads here.
FILE_UNREADABLE = "FILE_UNREADABLE"

# --- R10: decision reasons ------------------------------------------------------------------

ALLOWED = "ALLOWED"
NOT_FOUND = "NOT_FOUND"
NOT_CLIENT_SOURCED = "NOT_CLIENT_SOURCED"
DELETED = "DELETED"
CONSENT_WITHDRAWN = "CONSENT_WITHDRAWN"
DECISION_REASONS = (ALLOWED, NOT_FOUND, NOT_CLIENT_SOURCED, DELETED, CONSENT_WITHDRAWN)

SOFT_DELETE = "soft_delete"
HARD_DELETE = "hard_delete"

# --- Table schemas (Spark DDL types) ------------------------------------------------------------

Schema = tuple[tuple[str, str], ...]

LINEAGE: Schema = (
    ("source_file", "STRING"),
    ("file_date", "DATE"),
    ("file_ts", "STRING"),
    ("line_number", "BIGINT"),
)

# Descriptive phone attributes shared by every family (R8).
ATTRIBUTES: Schema = (
    ("phone_type", "STRING"),
    ("phone_status", "STRING"),
    ("phone_source", "STRING"),
    ("phone_technology", "STRING"),
    ("quality_score", "INT"),
)

# Bronze keeps no names and the SSN only as a keyed hash. With `phone_raw` (the phone as
# delivered) it keeps every other delivered field, so Silver can rebuild a row's text with its
# personal fields blanked for R8's last tie-break (see README, "Personal data").
_BRONZE_COMMON: Schema = (
    ("account_number", "STRING"),
    ("consumer_type", "STRING"),
    ("agency_id", "STRING"),
    ("ssn_hash", "STRING"),
    ("phone_number", "STRING"),
    *ATTRIBUTES,
    ("quality_score_raw", "STRING"),
    ("phone_raw", "STRING"),
)

BRONZE_ENROLLMENT: Schema = (
    *_BRONZE_COMMON,
    ("enrollment_date", "DATE"),
    *LINEAGE,
)
BRONZE_SNAPSHOT: Schema = (
    ("cnsmr_phn_id", "STRING"),
    *_BRONZE_COMMON,
    ("consent_flag", "STRING"),
    ("consent_date", "DATE"),
    *LINEAGE,
)
BRONZE_CHANGE: Schema = (
    ("cnsmr_phn_hst_id", "STRING"),
    *_BRONZE_COMMON,
    ("consent_flag", "STRING"),
    ("consent_date", "DATE"),
    ("soft_delete_flag", "STRING"),
    ("record_date", "DATE"),
    *LINEAGE,
)
BRONZE_SCHEMAS: dict[str, Schema] = {
    ENROLLMENT.name: BRONZE_ENROLLMENT,
    SNAPSHOT.name: BRONZE_SNAPSHOT,
    CHANGE.name: BRONZE_CHANGE,
}

# Snapshot files are big (~300k rows each): a partition per delivered file stores their lineage
# once, not per row, and lets a reader take only the snapshots it needs (R13). Enrollment and
# change files hold a few hundred rows each: there a folder and a data file per delivered file
# (~10 ms apiece on a local disk) cost more than the rows, so those tables are not partitioned.
BRONZE_PARTITION_COLUMNS: dict[str, tuple[str, ...]] = {
    ENROLLMENT.name: (),
    SNAPSHOT.name: ("file_date", "file_ts", "source_file"),
    CHANGE.name: (),
}

REJECTS: Schema = (
    ("source_file", "STRING"),
    ("family", "STRING"),
    ("file_date", "DATE"),
    ("line_number", "BIGINT"),  # 0 for a whole-file reject (R1.3)
    ("raw_text", "STRING"),
    ("reason", "STRING"),
)

# One row per delivered file version: the exactly-once ingestion ledger (R1.2, R1.3).
FILE_LEDGER: Schema = (
    ("source_file", "STRING"),
    ("family", "STRING"),
    ("file_date", "DATE"),
    ("file_ts", "STRING"),
    ("size_bytes", "BIGINT"),
    ("fingerprint", "STRING"),  # cheap change signal: S3 ETag, or local size + mtime
    ("sha256", "STRING"),
    ("rows_read", "BIGINT"),
    ("rows_accepted", "BIGINT"),
    ("rows_rejected", "BIGINT"),
    ("status", "STRING"),  # INGESTED | REJECTED
    ("reason", "STRING"),
    ("ingested_at", "TIMESTAMP"),
    ("run_id", "STRING"),
)
LEDGER_INGESTED = "INGESTED"
LEDGER_REJECTED = "REJECTED"
# Delivered again with the bytes of the name's latest version under a new fingerprint (an S3
# ETag under SSE-KMS is not the content's MD5): recorded so that the sensor knows it, not ingested.
LEDGER_UNCHANGED = "UNCHANGED"

# Silver: one row per pair with its reconciled state and the evidence that decided each part.
SILVER_PAIR: Schema = (
    ("account_number", "STRING"),
    ("phone_number", "STRING"),
    *ATTRIBUTES,
    ("attributes_file", "STRING"),
    ("latest_present_date", "DATE"),
    ("presence_file", "STRING"),
    ("is_deleted", "BOOLEAN"),
    ("delete_type", "STRING"),
    ("deleted_at", "DATE"),
    ("deletion_file", "STRING"),
    ("has_sms_consent", "BOOLEAN"),
    ("sms_consent_updated_at", "DATE"),
    ("consent_file", "STRING"),
)

# Silver's per-pair evidence state (transforms/silver.pair_evidence): each part a struct led by
# its order key, so that two states merge by taking the greater.
_LATEST_ROW = ", ".join(f"{name}: {kind}" for name, kind in ATTRIBUTES)
PAIR_EVIDENCE: Schema = (
    ("account_key", "BIGINT"),
    ("phone_key", "BIGINT"),
    ("last_in_snapshot", "DATE"),
    ("presence", "STRUCT<key: BIGINT, file_ts: STRING, source_file: STRING>"),
    (
        "latest",
        "STRUCT<key: BIGINT, file_ts: STRING, row_text: STRING, "
        f"{_LATEST_ROW}, source_file: STRING>",
    ),
    (
        "consent",
        "STRUCT<key: BIGINT, file_ts: STRING, row_text: STRING, consent_flag: STRING, "
        "source_file: STRING>",
    ),
    ("soft_deletes", "ARRAY<STRUCT<evidence_date: DATE, source_file: STRING>>"),
)

# Gold `phone_consent`: SPEC's schema, the R10 decision and its R12 lineage.
GOLD_DECISION: Schema = (
    ("account_number", "STRING"),
    ("phone_number", "STRING"),
    ("phone_source", "STRING"),
    ("has_sms_consent", "BOOLEAN"),
    ("sms_consent_updated_at", "DATE"),
    ("is_deleted", "BOOLEAN"),
    ("delete_type", "STRING"),
    ("deleted_at", "DATE"),
    ("can_send_sms", "BOOLEAN"),
    ("reason", "STRING"),
    ("phone_type", "STRING"),
    ("phone_status", "STRING"),
    ("phone_technology", "STRING"),
    ("quality_score", "INT"),
    ("attributes_file", "STRING"),
    ("presence_file", "STRING"),
    ("latest_present_date", "DATE"),
    ("deletion_file", "STRING"),
    ("consent_file", "STRING"),
    ("content_hash", "STRING"),
)
PAIR_KEY = ("account_number", "phone_number")
# Gold `decision_history` (R14): a pair's Gold row as of every file date in [valid_from, valid_to).
DECISION_HISTORY: Schema = (
    *GOLD_DECISION,
    ("valid_from", "DATE"),
    ("valid_to", "DATE"),
)

# Gold `decision_changes` (R14, system time): one row per pair a Gold publication changed, read
# from Gold's Change Data Feed: the decision before (NULL: the pair was new) and after (NULL: it
# left Gold), which Gold version published it when, in which run, applying which file versions
# (an incremental publication's new ones; a full build's are all those in force at its ledger
# version, named by it, not listed on each of its rows).
DECISION_CHANGES: Schema = (
    ("account_number", "STRING"),
    ("phone_number", "STRING"),
    ("change", "STRING"),  # insert | update | delete
    ("old_can_send_sms", "BOOLEAN"),
    ("old_reason", "STRING"),
    ("new_can_send_sms", "BOOLEAN"),
    ("new_reason", "STRING"),
    ("gold_version", "BIGINT"),
    ("published_at", "TIMESTAMP"),
    ("run_id", "STRING"),
    ("refresh", "STRING"),  # full | incremental
    ("ledger_version", "BIGINT"),
    ("run_files", "ARRAY<STRING>"),  # NULL for a full build
)

# Every table by its path under the warehouse (and its Dagster asset key).
TABLES: dict[str, Schema] = {
    **{f"bronze/{name}": table for name, table in BRONZE_SCHEMAS.items()},
    "bronze/rejects": REJECTS,
    "bronze/file_ledger": FILE_LEDGER,
    "silver/pair_evidence": PAIR_EVIDENCE,
    "silver/pair_state": SILVER_PAIR,
    "gold/phone_consent": GOLD_DECISION,
    "gold/decision_history": DECISION_HISTORY,
    "gold/decision_changes": DECISION_CHANGES,
}


def names(schema: Schema) -> list[str]:
    """Column names of a schema, in order."""
    return [name for name, _ in schema]


def ddl(schema: Schema) -> str:
    """Spark DDL for a schema, e.g. 'account_number STRING, phone_number STRING'."""
    return ", ".join(f"{name} {typ}" for name, typ in schema)


# The Gold fields a found pair carries beside its key and its decision (can_send_sms, reason).
GOLD_PAIR_FIELDS = tuple(
    name for name in names(GOLD_DECISION) if name not in (*PAIR_KEY, "can_send_sms", "reason")
)

"""Bad input for --dirty: every kind SPEC R1 names, each with the outcome a reader must reach.

Dirty rows are extra lines (they replace nothing) about accounts of their own (first digit 9,
which the book never uses), so a rejected row can never hide a pair of the book or touch a
planted case. Whole-file failures go into extra ENRLMT/SUPPLFWD files or unrecognised names,
never into snapshots, so no snapshot shrinks (R13).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from isal import igzip

from datagen import vocab
from datagen.calendar import CHANGE_WINDOW, iso, to_date
from phone_compliance import schema

KEEP_UNKNOWN_DOMAIN = "keep:unknown {what} is kept as is and counted by a data-quality check"
KEEP_UNKNOWN_SOURCE = "keep:unknown phone source is kept and never counts as CLIENT"
KEEP_QUOTED_PIPE = 'keep:a "-quoted field holding | is one field'
KEEP_CRLF = "keep:CRLF line ends read like LF"
KEEP_HEADER_ONLY = "keep:header-only file is valid with 0 rows"


def reject_row(code: str) -> str:
    """Expected outcome of a row-level reject (R1.1)."""
    return f"reject_row:{code}"


def reject_file(code: str) -> str:
    """Expected outcome of a whole-file reject (R1.3)."""
    return f"reject_file:{code}"


@dataclass(frozen=True)
class DirtyLine:
    """One bad (or oddly written but valid) data line to add to a file."""

    kind: str
    expected: str
    text: str  # without line end


@dataclass(frozen=True)
class ExtraFile:
    """A whole file written only in dirty mode."""

    rel_path: str
    plain: bytes  # what the file says, uncompressed (for the preview)
    data: bytes  # the bytes on disk
    rows: int | None  # data lines, None when the file cannot be decompressed
    kind: str
    expected: str


Row = dict[str, str]
Mutation = Callable[[Row, np.random.Generator], list[str] | None]


class _Rows:
    """Valid rows about dirty-only accounts, to be spoiled one field at a time."""

    def __init__(self, rng: np.random.Generator, agencies: tuple[str, ...]) -> None:
        self.rng = rng
        self.agencies = agencies

    def _identity(self) -> dict[str, str]:
        rng = self.rng
        account = "9" + "".join(str(d) for d in rng.integers(0, 10, 15))
        area = int(rng.choice(vocab.AREA_CODES))
        fmt = vocab.PHONE_FORMATS[int(rng.integers(0, len(vocab.PHONE_FORMATS)))]
        phone = fmt.format(
            a=area, e=int(rng.integers(200, 1000)), l=f"{rng.integers(0, 10000):04d}"
        )
        return {
            "account": account,
            "legacy": account + "P",
            "agency": str(rng.choice(self.agencies)),
            "ssn": f"{int(rng.integers(1, 666)):03d}{int(rng.integers(1, 100)):02d}"
            f"{int(rng.integers(1, 10000)):04d}",
            "first": str(rng.choice(vocab.FIRST_NAMES)),
            "last": str(rng.choice(vocab.LAST_NAMES)),
            "phone": phone,
            "type": str(rng.choice(schema.PHONE_TYPES)),
            "status": str(rng.choice(schema.PHONE_STATUSES)),
            "source": schema.CLIENT_SOURCE,
            "tech": str(rng.choice(schema.PHONE_TECHNOLOGIES)),
            "score": str(int(rng.integers(1, 101))),
        }

    def snapshot(self, file_day: int) -> Row:
        i = self._identity()
        consent = str(self.rng.choice(["", "", "Y", "N"]))
        return dict(
            zip(
                schema.SNAPSHOT.columns,
                [
                    str(int(self.rng.integers(90_000_000, 99_999_999))),
                    i["legacy"],
                    i["agency"],
                    i["ssn"],
                    i["first"],
                    i["last"],
                    i["phone"],
                    i["type"],
                    i["status"],
                    i["source"],
                    i["tech"],
                    i["score"],
                    consent,
                    iso(file_day - int(self.rng.integers(30, 900))) if consent else "",
                ],
                strict=True,
            )
        )

    def change(self, file_day: int) -> Row:
        row = self.snapshot(file_day)
        del row["cnsmr_phn_id"]
        out = {"cnsmr_phn_hst_id": str(int(self.rng.integers(90_000_000, 99_999_999)))}
        out.update(row)
        out["cnsmr_phn_sft_dlt_flg"] = "N"
        out["record_date"] = iso(file_day - int(self.rng.integers(1, CHANGE_WINDOW + 1)))
        return out

    def enrollment(self, file_day: int) -> Row:
        i = self._identity()
        return dict(
            zip(
                schema.ENROLLMENT.columns,
                [
                    i["account"],
                    i["legacy"],
                    i["agency"],
                    i["ssn"],
                    i["first"],
                    i["last"],
                    i["phone"],
                    i["type"],
                    i["tech"],
                    i["status"],
                    i["source"],
                    i["score"],
                    iso(file_day - int(self.rng.integers(0, 10))),
                ],
                strict=True,
            )
        )


def _set(column: str, value: str) -> Mutation:
    """A mutation that sets one field."""

    def mutate(row: Row, rng: np.random.Generator) -> None:
        row[column] = value

    return mutate


def _legacy(make: Callable[[str], str]) -> Mutation:
    """A mutation of the legacy identifier, whatever the family calls it."""

    def mutate(row: Row, rng: np.random.Generator) -> None:
        key = (
            "cnsmr_idntfr_lgcy_txt"
            if "cnsmr_idntfr_lgcy_txt" in row
            else ("consumer_legacy_identifier")
        )
        row[key] = make(row[key])

    return mutate


def _bad_calendar_date(row: Row, rng: np.random.Generator) -> None:
    key = "record_date" if "record_date" in row else "enrollment_date"
    row[key] = row[key][:4] + "-02-30"


def _compact_date(row: Row, rng: np.random.Generator) -> None:
    key = "record_date" if "record_date" in row else "enrollment_date"
    row[key] = row[key].replace("-", "")


def _month_13(row: Row, rng: np.random.Generator) -> None:
    row["enrollment_date"] = row["enrollment_date"][:4] + "-13-01"


def _drop_last_field(row: Row, rng: np.random.Generator) -> list[str]:
    return list(row.values())[:-1]


def _extra_field(row: Row, rng: np.random.Generator) -> list[str]:
    return [*row.values(), "EXTRA"]


def _short_account(row: Row, rng: np.random.Generator) -> None:
    # 15 digits: malformed (R2); the legacy identifier stays well-formed.
    row["account_number"] = row["account_number"][:15]


def _other_account(row: Row, rng: np.random.Generator) -> None:
    # Both well-formed, but they name different accounts (R2).
    other = "9" + "".join(str(d) for d in rng.integers(0, 10, 15))
    row["consumer_legacy_identifier"] = other + "P"


S, C, E = schema.SNAPSHOT, schema.CHANGE, schema.ENROLLMENT
_SNAPSHOT_LAST = "cnsmr_nm_lst_txt"
# (family, kind, expected, mutation): every R1 case at least once, in each family it fits.
CATALOGUE: tuple[tuple[schema.Family, str, str, Mutation], ...] = (
    (S, "field_count", reject_row(schema.REJECT_FIELD_COUNT), _set(_SNAPSHOT_LAST, "O|Brien")),
    (S, "bad_legacy_identifier", reject_row(schema.REJECT_LEGACY_ID), _legacy(lambda v: v[1:])),
    (S, "bad_legacy_identifier", reject_row(schema.REJECT_LEGACY_ID), _legacy(lambda v: v[:-1])),
    (
        S,
        "bad_phone_number",
        reject_row(schema.REJECT_PHONE),
        _set("cnsmr_phn_nmbr_txt", "555-0123"),
    ),
    (
        S,
        "bad_consent_flag",
        reject_row(schema.REJECT_CONSENT_FLAG),
        _set("cnsmr_phn_cnsnt_flg", "X"),
    ),
    (
        S,
        "unknown_phone_type",
        KEEP_UNKNOWN_DOMAIN.format(what="phone type"),
        _set("cnsmr_phn_typ_val_txt", vocab.UNKNOWN_TYPE),
    ),
    (
        S,
        "unknown_phone_status",
        KEEP_UNKNOWN_DOMAIN.format(what="phone status"),
        _set("cnsmr_phn_stts_val_txt", vocab.UNKNOWN_STATUS),
    ),
    (
        S,
        "unknown_phone_technology",
        KEEP_UNKNOWN_DOMAIN.format(what="phone technology"),
        _set("cnsmr_phn_tchnlgy_typ_val_txt", vocab.UNKNOWN_TECHNOLOGY),
    ),
    (
        S,
        "unknown_phone_source",
        KEEP_UNKNOWN_SOURCE,
        _set("cnsmr_phn_src_val_txt", vocab.UNKNOWN_SOURCE),
    ),
    (S, "quoted_pipe", KEEP_QUOTED_PIPE, _set(_SNAPSHOT_LAST, '"O|Brien"')),
    (C, "field_count", reject_row(schema.REJECT_FIELD_COUNT), _drop_last_field),
    (
        C,
        "bad_legacy_identifier",
        reject_row(schema.REJECT_LEGACY_ID),
        _legacy(lambda v: v[:-1] + "p"),
    ),
    (
        C,
        "bad_phone_number",
        reject_row(schema.REJECT_PHONE),
        _set("cnsmr_phn_nmbr_txt", "(012) 555-0123"),
    ),
    (
        C,
        "bad_phone_number",
        reject_row(schema.REJECT_PHONE),
        _set("cnsmr_phn_nmbr_txt", "212-155-0123"),
    ),
    (C, "bad_date", reject_row(schema.REJECT_DATE), _bad_calendar_date),
    (C, "bad_date", reject_row(schema.REJECT_DATE), _compact_date),
    (
        C,
        "bad_consent_flag",
        reject_row(schema.REJECT_CONSENT_FLAG),
        _set("cnsmr_phn_cnsnt_flg", "y"),
    ),
    (
        C,
        "bad_soft_delete_flag",
        reject_row(schema.REJECT_SOFT_DELETE_FLAG),
        _set("cnsmr_phn_sft_dlt_flg", "D"),
    ),
    (
        C,
        "unknown_phone_source",
        KEEP_UNKNOWN_SOURCE,
        _set("cnsmr_phn_src_val_txt", "LEAD_" + vocab.UNKNOWN_SOURCE),
    ),
    (C, "quoted_pipe", KEEP_QUOTED_PIPE, _set("cnsmr_nm_frst_txt", '"Mary|Ann"')),
    (E, "field_count", reject_row(schema.REJECT_FIELD_COUNT), _extra_field),
    (E, "bad_account_number", reject_row(schema.REJECT_ACCOUNT), _short_account),
    (E, "account_legacy_mismatch", reject_row(schema.REJECT_ACCOUNT_MISMATCH), _other_account),
    (
        E,
        "bad_phone_number",
        reject_row(schema.REJECT_PHONE),
        _set("phone_number", "+44 20 7946 0958"),
    ),
    (E, "bad_date", reject_row(schema.REJECT_DATE), _bad_calendar_date),
    (E, "bad_date", reject_row(schema.REJECT_DATE), _month_13),
    (
        E,
        "unknown_phone_type",
        KEEP_UNKNOWN_DOMAIN.format(what="phone type"),
        _set("phone_type", vocab.UNKNOWN_TYPE),
    ),
    (
        E,
        "unknown_phone_technology",
        KEEP_UNKNOWN_DOMAIN.format(what="phone technology"),
        _set("phone_technology", vocab.UNKNOWN_TECHNOLOGY),
    ),
    (E, "quoted_pipe", KEEP_QUOTED_PIPE, _set("last_name", '"Smith|Jones"')),
)


def dirty_line(
    rows: _Rows, family: schema.Family, file_day: int, mutation: Mutation, kind: str, expected: str
) -> DirtyLine:
    """A valid row for a file of `family` dated `file_day`, spoiled by `mutation`."""
    make = {S.name: rows.snapshot, C.name: rows.change, E.name: rows.enrollment}[family.name]
    row = make(file_day)
    fields = mutation(row, rows.rng)
    return DirtyLine(kind=kind, expected=expected, text="|".join(fields or row.values()))


def _gz(data: bytes) -> bytes:
    return igzip.compress(data, 1, mtime=0)


def extra_files(
    rng: np.random.Generator,
    agencies: tuple[str, ...],
    change_days: np.ndarray,
    enroll_days: np.ndarray,
) -> list[ExtraFile]:
    """Whole files that are broken (or odd but valid), beside the book's files."""
    rows = _Rows(rng, agencies)

    def name(family: schema.Family, day: int, minute: int) -> str:
        ts = f"{to_date(day):%Y%m%d}23{minute:02d}00000"
        return f"{family.folder}/{schema.file_name(family, ts, 1)}"

    def body(family: schema.Family, day: int, n: int) -> bytes:
        make = rows.change if family is C else rows.enrollment
        lines = ["|".join(family.columns)] + ["|".join(make(day).values()) for _ in range(n)]
        return ("\n".join(lines) + "\n").encode()

    c_days = [int(d) for d in rng.choice(change_days, 4, replace=False)]
    e_days = [int(d) for d in rng.choice(enroll_days[:-1], 3, replace=False)]
    out: list[ExtraFile] = []

    plain = body(C, c_days[0], 40)
    packed = _gz(plain)
    out.append(
        ExtraFile(
            name(C, c_days[0], 1),
            plain,
            packed[: len(packed) * 6 // 10],
            None,
            "truncated_gzip",
            reject_file(schema.FILE_BAD_GZIP),
        )
    )
    out.append(
        ExtraFile(
            name(C, c_days[1], 2), b"", b"", 0, "empty_file", reject_file(schema.FILE_NO_HEADER)
        )
    )
    plain = body(C, c_days[2], 5)
    wrong = "hst_id|legacy_id|phone|consent|delete_flag|record_dt\n"
    plain = (
        wrong.encode()
        + b"\n".join(
            b"|".join(
                line.split(b"|")[:2]
                + line.split(b"|")[6:7]
                + line.split(b"|")[12:13]
                + line.split(b"|")[14:16]
            )
            for line in plain.splitlines()[1:]
        )
        + b"\n"
    )
    out.append(
        ExtraFile(
            name(C, c_days[2], 3),
            plain,
            _gz(plain),
            5,
            "unknown_header",
            reject_file(schema.FILE_BAD_HEADER),
        )
    )
    out.append(
        ExtraFile(
            name(E, e_days[0], 4),
            b"",
            _gz(b""),
            0,
            "empty_gzip",
            reject_file(schema.FILE_NO_HEADER),
        )
    )
    plain = body(E, e_days[1], 0)
    out.append(
        ExtraFile(name(E, e_days[1], 5), plain, _gz(plain), 0, "header_only", KEEP_HEADER_ONLY)
    )
    plain = body(E, e_days[2], 6)
    out.append(
        ExtraFile(
            name(E, e_days[2], 6), plain, plain, None, "not_gzip", reject_file(schema.FILE_BAD_GZIP)
        )
    )
    # Unrecognised names (R1.3): no family token / a timestamp that is not 17 digits.
    plain = body(C, c_days[3], 3)
    out.append(
        ExtraFile(
            "MAINTENANCE/README_2023.csv.gz",
            plain,
            _gz(plain),
            3,
            "unrecognised_name",
            reject_file(schema.FILE_BAD_NAME),
        )
    )
    short_ts = f"{to_date(e_days[2]):%Y%m%d}"
    plain = body(E, e_days[2], 3)
    out.append(
        ExtraFile(
            f"ENROLLMENT/{E.prefix}-{short_ts}-{E.infix}_001.csv.gz",
            plain,
            _gz(plain),
            3,
            "unrecognised_name",
            reject_file(schema.FILE_BAD_NAME),
        )
    )
    for f in out:
        assert (schema.parse_file_name(f.rel_path.split("/")[-1]) is None) == (
            f.kind == "unrecognised_name"
        )
    return out

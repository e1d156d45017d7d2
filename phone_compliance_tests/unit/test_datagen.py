"""The data generator: SPEC §1 file formats, determinism, proportions, dirty input, planted cases.

The checks read the files the way a client reader would (gzip, `|`, `"` quoting) and apply
SPEC R1-R3 with a few lines of their own, so they do not depend on the pipeline's code.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import re
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import datagen
from datagen.__main__ import main
from phone_compliance import schema

SMALL = 300  # accounts: a couple of seconds for a full dataset
MEDIUM = 2000  # accounts: enough for proportions within a few points

LEGACY_RE = re.compile(r"^[0-9]{16}[A-Z]$")
ACCOUNT_RE = re.compile(r"^[0-9]{16}$")
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
NON_DIGIT_RE = re.compile(r"[^0-9]")
REQUIRED_DATES = ("enrollment_date", "record_date")
DATE_COLUMNS = (*REQUIRED_DATES, "cnsmr_phn_cnsnt_dt")  # the consent date may be empty
LEGACY_COLUMN = {
    schema.ENROLLMENT.name: "consumer_legacy_identifier",
    schema.SNAPSHOT.name: "cnsmr_idntfr_lgcy_txt",
    schema.CHANGE.name: "cnsmr_idntfr_lgcy_txt",
}
PHONE_COLUMN = {
    schema.ENROLLMENT.name: "phone_number",
    schema.SNAPSHOT.name: "cnsmr_phn_nmbr_txt",
    schema.CHANGE.name: "cnsmr_phn_nmbr_txt",
}
DOMAIN_COLUMNS = {  # column -> (domain, unknown-value kind)
    "phone_type": (schema.PHONE_TYPES, "unknown_phone_type"),
    "cnsmr_phn_typ_val_txt": (schema.PHONE_TYPES, "unknown_phone_type"),
    "phone_status": (schema.PHONE_STATUSES, "unknown_phone_status"),
    "cnsmr_phn_stts_val_txt": (schema.PHONE_STATUSES, "unknown_phone_status"),
    "phone_technology": (schema.PHONE_TECHNOLOGIES, "unknown_phone_technology"),
    "cnsmr_phn_tchnlgy_typ_val_txt": (schema.PHONE_TECHNOLOGIES, "unknown_phone_technology"),
    "phone_source": (schema.PHONE_SOURCES, "unknown_phone_source"),
    "cnsmr_phn_src_val_txt": (schema.PHONE_SOURCES, "unknown_phone_source"),
}


# --- R1-R3 in a few lines, independent of the pipeline ---------------------------------------


def normalize_phone(raw: str) -> str | None:
    """R3: +1XXXXXXXXXX, or None."""
    digits = NON_DIGIT_RE.sub("", raw)
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    if len(digits) != 10 or digits[0] in "01" or digits[3] in "01":
        return None
    return "+1" + digits


def valid_date(text: str) -> bool:
    """YYYY-MM-DD and a real calendar day."""
    if not DATE_RE.match(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def check_row(family: schema.Family, fields: list[str]) -> tuple[str | None, dict, str]:
    """R1.1: (reason the row is rejected for or None, its trimmed values, its R3 phone)."""
    if len(fields) != len(family.columns):
        return schema.REJECT_FIELD_COUNT, {}, ""
    row = dict(zip(family.columns, [f.strip() for f in fields], strict=True))
    legacy = row[LEGACY_COLUMN[family.name]]
    phone = normalize_phone(row[PHONE_COLUMN[family.name]])
    dates = [c for c in DATE_COLUMNS if c in row and (row[c] or c in REQUIRED_DATES)]
    if family is schema.ENROLLMENT and not ACCOUNT_RE.match(row["account_number"]):
        reason = schema.REJECT_ACCOUNT
    elif not LEGACY_RE.match(legacy):
        reason = schema.REJECT_LEGACY_ID
    elif family is schema.ENROLLMENT and row["account_number"] != legacy[:-1]:
        reason = schema.REJECT_ACCOUNT_MISMATCH
    elif phone is None:
        reason = schema.REJECT_PHONE
    elif not all(valid_date(row[c]) for c in dates):
        reason = schema.REJECT_DATE
    elif row.get("cnsmr_phn_cnsnt_flg", "") not in schema.CONSENT_FLAGS:
        reason = schema.REJECT_CONSENT_FLAG
    elif row.get("cnsmr_phn_sft_dlt_flg", "Y") not in schema.SOFT_DELETE_FLAGS:
        reason = schema.REJECT_SOFT_DELETE_FLAG
    else:
        reason = None
    return reason, row, phone or ""


def unknown_values(row: dict[str, str]) -> set[str]:
    """Kinds of out-of-domain descriptive values in an accepted row (kept, R1.1)."""
    return {
        kind for col, (dom, kind) in DOMAIN_COLUMNS.items() if col in row and row[col] not in dom
    }


# --- Reading a generated dataset ---------------------------------------------------------------


@dataclass(slots=True)
class Row:
    """One accepted data row with its key (R2, R3) and where it came from."""

    family: str
    path: str
    file_date: str
    seq: int
    line: int
    raw: str
    values: dict[str, str]
    account: str
    phone: str
    letter: str


@dataclass
class Dataset:
    """A generated dataset as a reader sees it."""

    root: Path
    manifest: dict
    raw: dict[str, bytes] = field(default_factory=dict)  # decompressed content per readable file
    rows: list[Row] = field(default_factory=list)
    rejected: dict[tuple[str, int], str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def by_family(self, name: str) -> list[Row]:
        return [r for r in self.rows if r.family == name]

    @property
    def snapshot_dates(self) -> list[str]:
        return sorted({r.file_date for r in self.by_family(schema.SNAPSHOT.name)})


def load(root: Path) -> Dataset:
    """Read every file under root as the pipeline would (unreadable files are skipped)."""
    ds = Dataset(root, json.loads((root / "manifest.json").read_text()))
    for entry in ds.manifest["files"]:
        path = entry["path"]
        data = (root / path).read_bytes()
        try:
            content = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            continue
        ds.raw[path] = content
        parsed = schema.parse_file_name(path.split("/")[-1])
        lines = content.decode("utf-8").split("\n")
        assert lines[-1] == "", f"{path} does not end with a line end"
        lines = [x.removesuffix("\r") for x in lines[:-1]]
        if not lines or parsed is None:
            continue
        fam = parsed.family
        ds.headers[path] = lines[0]
        if lines[0] != "|".join(fam.columns):
            continue
        for n, text in enumerate(lines[1:], start=2):
            # Quoted fields are rare: split plainly unless the line has a quote.
            fields = next(csv.reader([text], delimiter="|")) if '"' in text else text.split("|")
            reason, values, phone = check_row(fam, fields)
            if reason:
                ds.rejected[(path, n)] = reason
                continue
            legacy = values[LEGACY_COLUMN[fam.name]]
            ds.rows.append(
                Row(
                    fam.name,
                    path,
                    parsed.file_date,
                    parsed.seq,
                    n,
                    text,
                    values,
                    legacy[:-1],
                    phone,
                    legacy[-1],
                )
            )
    return ds


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    root = tmp_path_factory.mktemp("clean")
    datagen.generate(root, seed=7, accounts=SMALL)
    return load(root)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    root = tmp_path_factory.mktemp("dirty")
    datagen.generate(root, seed=11, accounts=SMALL, dirty=True)
    return load(root)


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    root = tmp_path_factory.mktemp("medium")
    datagen.generate(root, seed=3, accounts=MEDIUM)
    return load(root)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- Determinism -------------------------------------------------------------------------------


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    datagen.generate(a, seed=5, accounts=SMALL, dirty=True, workers=1)
    datagen.generate(b, seed=5, accounts=SMALL, dirty=True, workers=2)
    files_a, files_b = _files(a), _files(b)
    assert files_a.keys() == files_b.keys()
    assert files_a == files_b


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    datagen.generate(tmp_path / "a", seed=1, accounts=SMALL)
    datagen.generate(tmp_path / "b", seed=2, accounts=SMALL)
    assert _files(tmp_path / "a")["manifest.json"] != _files(tmp_path / "b")["manifest.json"]


def test_dirty_mode_leaves_the_book_rows_as_they_are(clean: Dataset, tmp_path: Path) -> None:
    datagen.generate(tmp_path, seed=7, accounts=SMALL, dirty=True)
    dirty_ds = load(tmp_path)
    book = {r.raw for r in clean.rows}
    assert book <= {r.raw for r in dirty_ds.rows}


# --- SPEC §1 formats ---------------------------------------------------------------------------


def test_files_are_named_foldered_and_gzipped_per_spec(clean: Dataset) -> None:
    families = Counter()
    for entry in clean.manifest["files"]:
        path = entry["path"]
        folder, name = path.split("/")
        parsed = schema.parse_file_name(name)
        assert parsed is not None, path
        assert folder == parsed.family.folder
        assert re.fullmatch(r"[0-9]{17}", parsed.file_ts)
        assert entry["family"] == parsed.family.name
        assert entry["file_date"] == parsed.file_date
        data = (clean.root / path).read_bytes()
        assert data[:3] == b"\x1f\x8b\x08"  # gzip, deflate
        assert data[3] == 0, "no file name or other optional header fields"
        assert data[4:8] == b"\0\0\0\0", "mtime 0, for byte-identical output"
        assert entry["size_bytes"] == len(data)
        assert entry["rows"] == clean.raw[path].count(b"\n") - 1
        families[parsed.family.name] += 1
    assert families[schema.ENROLLMENT.name] >= 90
    assert families[schema.CHANGE.name] >= 230
    assert len(clean.snapshot_dates) == 60
    assert families[schema.SNAPSHOT.name] > 60, "some snapshots come in several parts"


def test_headers_are_the_family_columns(clean: Dataset) -> None:
    for path, head in clean.headers.items():
        parsed = schema.parse_file_name(path.split("/")[-1])
        assert head == "|".join(parsed.family.columns)


def test_clean_rows_are_all_valid_and_in_domain(clean: Dataset) -> None:
    assert clean.rejected == {}
    for r in clean.rows:
        v = r.values
        assert not unknown_values(v), r.raw
        assert ACCOUNT_RE.match(r.account) and r.letter in "PSC"
        assert r.phone.startswith("+1")
        if r.family == schema.ENROLLMENT.name:
            assert v["account_number"] == r.account
            assert 1 <= int(v["quality_score"]) <= 100
            assert v["enrollment_date"] <= r.file_date
        else:
            assert 1 <= int(v["cnsmr_phn_qlty_score_nmbr"]) <= 100
            assert v["cnsmr_phn_cnsnt_flg"] in schema.CONSENT_FLAGS
            if v["cnsmr_phn_cnsnt_dt"]:
                assert v["cnsmr_phn_cnsnt_flg"] in ("Y", "N")
                assert v["cnsmr_phn_cnsnt_dt"] <= r.file_date
            assert re.fullmatch(r"[0-9]{16}[A-Z]", v["cnsmr_idntfr_lgcy_txt"])
            assert re.fullmatch(r"[0-9]{9}", v["cnsmr_idntfr_ssn_txt"])
        if r.family == schema.CHANGE.name:
            record = dt.date.fromisoformat(v["record_date"])
            file_day = dt.date.fromisoformat(r.file_date)
            assert 1 <= (file_day - record).days <= 7, "record_date in the week before the file"
            assert v["cnsmr_phn_sft_dlt_flg"] in schema.SOFT_DELETE_FLAGS


def test_phones_come_in_varied_raw_formats(clean: Dataset) -> None:
    raw = {r.values[PHONE_COLUMN[r.family]] for r in clean.rows}
    for shape in (
        r"\([0-9]{3}\) [0-9]{3}-[0-9]{4}",
        r"[0-9]{3}-[0-9]{3}-[0-9]{4}",
        r"[0-9]{10}",
        r"1-[0-9]{3}-[0-9]{3}-[0-9]{4}",
        r"\+1 [0-9]{3} [0-9]{3} [0-9]{4}",
    ):
        assert any(re.fullmatch(shape, p) for p in raw), shape


def test_sources_and_consent_dates_vary(clean: Dataset) -> None:
    snaps = clean.by_family(schema.SNAPSHOT.name)
    sources = Counter(r.values["cnsmr_phn_src_val_txt"] for r in snaps)
    assert set(sources) == set(schema.PHONE_SOURCES)
    assert sources["CLIENT"] > 0.6 * len(snaps)
    flagged = [r for r in snaps if r.values["cnsmr_phn_cnsnt_flg"]]
    assert any(not r.values["cnsmr_phn_cnsnt_dt"] for r in flagged)
    assert any(r.values["cnsmr_phn_cnsnt_dt"] for r in flagged)


# --- Proportions -------------------------------------------------------------------------------


def _pairs_by_snapshot(ds: Dataset) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for r in ds.by_family(schema.SNAPSHOT.name):
        out[r.file_date].add((r.account, r.phone))
    return dict(sorted(out.items()))


def test_volume_follows_the_account_count(medium: Dataset) -> None:
    rows = sum(f["rows"] for f in medium.manifest["files"])
    per_account = rows / MEDIUM
    # ~143k accounts per GB and 20-23 M rows per GB: ~140-160 rows per account.
    assert 135 <= per_account <= 165, per_account


def test_consent_flags_are_about_five_percent_each(medium: Dataset) -> None:
    snaps = medium.by_family(schema.SNAPSHOT.name)
    flags = Counter(r.values["cnsmr_phn_cnsnt_flg"] for r in snaps)
    assert 0.035 <= flags["Y"] / len(snaps) <= 0.065, flags
    assert 0.035 <= flags["N"] / len(snaps) <= 0.065, flags


def test_deletions_and_withdrawals_in_proportion(medium: Dataset) -> None:
    snapshots = _pairs_by_snapshot(medium)
    dates = list(snapshots)
    changes = medium.by_family(schema.CHANGE.name)
    pairs = {(r.account, r.phone) for r in medium.rows}
    soft = {(r.account, r.phone) for r in changes if r.values["cnsmr_phn_sft_dlt_flg"] == "Y"}
    dropped = set()
    for before, after in zip(dates, dates[1:], strict=False):
        dropped |= snapshots[before] - snapshots[after]
    hard = dropped - soft
    assert 0.065 <= len(soft) / len(pairs) <= 0.095, len(soft) / len(pairs)
    assert 0.035 <= len(hard) / len(pairs) <= 0.065, len(hard) / len(pairs)

    history: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for r in medium.rows:
        if r.family != schema.ENROLLMENT.name and r.values["cnsmr_phn_cnsnt_flg"]:
            history[(r.account, r.phone)].append((r.file_date, r.values["cnsmr_phn_cnsnt_flg"]))
    consented = {k for k, h in history.items() if "Y" in {f for _, f in h}}
    withdrawn = {
        k
        for k in consented
        if any(
            f == "N" and d > min(d2 for d2, f2 in history[k] if f2 == "Y") for d, f in history[k]
        )
    }
    assert 0.03 <= len(withdrawn) / len(consented) <= 0.11, (len(withdrawn), len(consented))


def test_one_to_four_phones_per_account(medium: Dataset) -> None:
    phones: dict[str, set[str]] = defaultdict(set)
    for r in medium.rows:
        phones[r.account].add(r.phone)
    sizes = Counter(len(p) for p in phones.values())
    assert set(sizes) == {1, 2, 3, 4}
    n = sum(sizes.values())
    assert n == MEDIUM
    for k, (lo, hi) in {1: (0.06, 0.2), 2: (0.2, 0.4), 3: (0.22, 0.42), 4: (0.15, 0.38)}.items():
        assert lo <= sizes[k] / n <= hi, sizes


def test_no_snapshot_is_markedly_smaller_than_the_one_before(medium: Dataset) -> None:
    sizes = [len(s) for s in _pairs_by_snapshot(medium).values()]
    for before, after in zip(sizes, sizes[1:], strict=False):
        assert after >= 0.97 * before  # far from the 20% R13 guard


def test_snapshots_agree_with_earlier_change_records(medium: Dataset) -> None:
    """A snapshot reflects the state at its date: after a soft delete the pair is gone until a
    change record brings it back, and it shows the consent of the latest change record."""
    changes: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in medium.by_family(schema.CHANGE.name):
        changes[(r.account, r.phone)].append(r)
    checked = 0
    for r in medium.by_family(schema.SNAPSHOT.name):
        earlier = [
            c
            for c in changes.get((r.account, r.phone), [])
            if c.values["record_date"] < r.file_date
        ]
        if not earlier:
            continue
        latest = max(earlier, key=lambda c: c.values["record_date"])
        assert latest.values["cnsmr_phn_sft_dlt_flg"] == "N", (r.raw, latest.raw)
        flagged = [c for c in earlier if c.values["cnsmr_phn_cnsnt_flg"]]
        if flagged:
            last_flag = max(flagged, key=lambda c: c.values["record_date"])
            assert r.values["cnsmr_phn_cnsnt_flg"] == last_flag.values["cnsmr_phn_cnsnt_flg"]
        checked += 1
    assert checked > 1000


# --- Dirty input -------------------------------------------------------------------------------


def test_dirty_manifest_lists_every_kind_spec_r1_names(dirty: Dataset) -> None:
    kinds = {d["kind"] for d in dirty.manifest["dirty"]}
    assert kinds >= {
        "field_count",
        "bad_legacy_identifier",
        "bad_account_number",
        "account_legacy_mismatch",
        "bad_phone_number",
        "bad_date",
        "bad_consent_flag",
        "bad_soft_delete_flag",
        "unknown_phone_type",
        "unknown_phone_status",
        "unknown_phone_technology",
        "unknown_phone_source",
        "quoted_pipe",
        "crlf_line_ends",
        "empty_file",
        "header_only",
        "truncated_gzip",
        "unknown_header",
        "unrecognised_name",
    }
    codes = {
        d["expected"].split(":", 1)[1]
        for d in dirty.manifest["dirty"]
        if d["expected"].startswith("reject")
    }
    assert codes == set(schema.ROW_REJECT_REASONS) | set(schema.FILE_REJECT_REASONS)


def test_each_listed_dirty_line_holds_its_problem(dirty: Dataset) -> None:
    listed = {(d["file"], d["line"]): d for d in dirty.manifest["dirty"] if d["line"]}
    assert len(listed) >= 25
    for (path, line), d in listed.items():
        outcome, what = d["expected"].split(":", 1)
        if outcome == "reject_row":
            assert dirty.rejected.get((path, line)) == what, d
        else:
            row = next(r for r in dirty.rows if r.path == path and r.line == line)
            if d["kind"] == "quoted_pipe":
                assert '"' in row.raw and any("|" in v for v in row.values.values())
            else:
                assert unknown_values(row.values) == {d["kind"]}, d
    # ...and nothing else in the data is bad or out of domain.
    assert set(dirty.rejected) <= set(listed)
    odd = {(r.path, r.line) for r in dirty.rows if unknown_values(r.values) or '"' in r.raw}
    assert odd <= set(listed)


def test_whole_file_problems_exist(dirty: Dataset) -> None:
    root = dirty.root
    for d in dirty.manifest["dirty"]:
        if d["line"] is not None:
            continue
        data = (root / d["file"]).read_bytes()
        kind = d["kind"]
        if kind == "empty_file":
            assert data == b"" and d["expected"] == "reject_file:FILE_NO_HEADER"
        elif kind == "empty_gzip":
            assert data and gzip.decompress(data) == b""
        elif kind in ("truncated_gzip", "not_gzip"):
            with pytest.raises((OSError, EOFError)):
                gzip.decompress(data)
            assert d["expected"] == "reject_file:FILE_BAD_GZIP"
        elif kind == "unknown_header":
            head = gzip.decompress(data).split(b"\n")[0].decode()
            assert head not in {"|".join(f.columns) for f in schema.FAMILIES}
        elif kind == "unrecognised_name":
            assert schema.parse_file_name(d["file"].split("/")[-1]) is None
        elif kind == "header_only":
            lines = gzip.decompress(data).decode().splitlines()
            assert len(lines) == 1 and d["expected"].startswith("keep:")
        elif kind == "crlf_line_ends":
            content = gzip.decompress(data)
            assert content.count(b"\r\n") == content.count(b"\n") > 2
        else:
            raise AssertionError(f"unexpected whole-file kind {kind}")


def test_dirty_row_counts_match_the_files(dirty: Dataset) -> None:
    for entry in dirty.manifest["files"]:
        content = dirty.raw.get(entry["path"])
        if content is None:
            assert entry["rows"] is None
        else:
            assert entry["rows"] == max(content.count(b"\n") - 1, 0), entry


def test_no_whole_file_problem_in_a_snapshot(dirty: Dataset) -> None:
    for d in dirty.manifest["dirty"]:
        parsed = schema.parse_file_name(d["file"].split("/")[-1])
        if d["line"] is None and parsed is not None and parsed.family is schema.SNAPSHOT:
            raise AssertionError(d)
    snapshot_dates = {r.file_date for r in dirty.by_family(schema.SNAPSHOT.name)}
    assert len(snapshot_dates) == 60


def test_dirty_rows_touch_no_account_of_the_book(dirty: Dataset) -> None:
    planted = {k["account_number"] for v in dirty.manifest["planted"].values() for k in v}
    listed = {(d["file"], d["line"]) for d in dirty.manifest["dirty"] if d["line"]}
    book = {r.account for r in dirty.rows if (r.path, r.line) not in listed}
    odd = {r.account for r in dirty.rows if (r.path, r.line) in listed}
    assert not odd & book and not odd & planted


# --- Planted cases -----------------------------------------------------------------------------


@dataclass
class Evidence:
    """What the files say about one pair."""

    snapshots: set[str] = field(default_factory=set)
    parts: set[tuple[str, int]] = field(default_factory=set)
    changes: list[Row] = field(default_factory=list)
    enrollments: list[Row] = field(default_factory=list)
    snapshot_rows: list[Row] = field(default_factory=list)
    letters: set[str] = field(default_factory=set)


def _evidence(ds: Dataset) -> dict[tuple[str, str], Evidence]:
    ev: dict[tuple[str, str], Evidence] = defaultdict(Evidence)
    for r in ds.rows:
        e = ev[(r.account, r.phone)]
        e.letters.add(r.letter)
        if r.family == schema.SNAPSHOT.name:
            e.snapshots.add(r.file_date)
            e.parts.add((r.file_date, r.seq))
            e.snapshot_rows.append(r)
        elif r.family == schema.CHANGE.name:
            e.changes.append(r)
        else:
            e.enrollments.append(r)
    return ev


def _consent_sequence(e: Evidence) -> list[str]:
    rows = sorted(
        e.snapshot_rows + e.changes, key=lambda r: r.values.get("record_date", r.file_date)
    )
    seq = [r.values["cnsmr_phn_cnsnt_flg"] for r in rows if r.values["cnsmr_phn_cnsnt_flg"]]
    return [f for i, f in enumerate(seq) if i == 0 or seq[i - 1] != f]


def _check_case(case: str, key: tuple[str, str], ds: Dataset, ev: dict) -> None:
    e: Evidence = ev[key]
    dates = ds.snapshot_dates
    last = dates[-1]
    soft = [r.values["record_date"] for r in e.changes if r.values["cnsmr_phn_sft_dlt_flg"] == "Y"]
    seen = [d in e.snapshots for d in dates]
    gaps = "".join("x" if s else "." for s in seen).strip(".")
    if case in ("readded_after_soft_delete", "readded_after_hard_delete"):
        assert "." in gaps and seen[-1], "absent from some snapshot, then back"
        assert bool(soft) == (case == "readded_after_soft_delete")
    elif case == "same_day_soft_delete_and_snapshot":
        assert any(d in e.snapshots for d in soft)
    elif case == "same_day_change_and_snapshot_absence":
        same = [
            r.values["record_date"]
            for r in e.changes
            if r.values["cnsmr_phn_sft_dlt_flg"] == "N" and r.values["record_date"] in dates
        ]
        assert same and all(d not in e.snapshots for d in same)
        assert dates[dates.index(same[0]) - 1] in e.snapshots
    elif case == "consent_changed_twice":
        assert len(_consent_sequence(e)) >= 3
    elif case == "consent_withdrawn":
        assert _consent_sequence(e) == ["Y", "N"]
    elif case == "consent_without_date":
        rows = e.snapshot_rows
        assert rows and all(r.values["cnsmr_phn_cnsnt_flg"] in "YN" for r in rows)
        assert all(r.values["cnsmr_phn_cnsnt_dt"] == "" for r in rows)
    elif case == "empty_consent_after_consent":
        assert any(r.values["cnsmr_phn_cnsnt_flg"] == "" for r in e.changes)
        assert all(r.values["cnsmr_phn_cnsnt_flg"] == "Y" for r in e.snapshot_rows)
    elif case == "attribute_change":
        first = min(e.snapshot_rows, key=lambda r: r.file_date).values
        latest = max(e.snapshot_rows, key=lambda r: r.file_date).values
        assert first["cnsmr_phn_src_val_txt"] != latest["cnsmr_phn_src_val_txt"]
    elif case == "non_client_source":
        assert {r.values["cnsmr_phn_src_val_txt"] for r in e.snapshot_rows} - {"CLIENT"}
    elif case == "soft_deleted":
        assert soft and last not in e.snapshots
    elif case == "hard_deleted":
        assert not soft and e.snapshots and last not in e.snapshots
    elif case == "exact_duplicate_rows":
        counts = Counter((r.path, r.raw) for r in e.snapshot_rows + e.changes + e.enrollments)
        assert max(counts.values()) >= 2
    elif case == "split_snapshot_part":
        assert (last, 1) not in e.parts and any(d == last and s >= 2 for d, s in e.parts)
    elif case == "shared_phone_several_consumers":
        assert len(e.letters) >= 2 and "P" in e.letters
    elif case == "enrollment_only":
        assert e.enrollments and not e.snapshots and not e.changes
        assert all(r.values["enrollment_date"] < last for r in e.enrollments)
    elif case == "enrollment_only_after_last_snapshot":
        assert e.enrollments and not e.snapshots
        assert all(r.values["enrollment_date"] > last for r in e.enrollments)
    elif case == "soft_delete_only":
        assert e.changes and not e.snapshots and not e.enrollments
        assert all(r.values["cnsmr_phn_sft_dlt_flg"] == "Y" for r in e.changes)
    elif case != "phone_on_several_accounts":
        raise AssertionError(f"no check for planted case {case}")


@pytest.mark.parametrize("fixture", ["clean", "dirty"])
def test_every_planted_case_is_in_the_files(fixture: str, request: pytest.FixtureRequest) -> None:
    ds: Dataset = request.getfixturevalue(fixture)
    ev = _evidence(ds)
    planted = ds.manifest["planted"]
    assert set(planted) == set(datagen.PLANTED_CASES)
    for case, keys in planted.items():
        assert len(keys) >= 3, case  # each case several times
        for k in keys:
            key = (k["account_number"], k["phone_number"])
            assert key in ev, (case, k)
            _check_case(case, key, ds, ev)
    accounts_of_phone: dict[str, set[str]] = defaultdict(set)
    for account, phone in ev:
        accounts_of_phone[phone].add(account)
    for k in planted["phone_on_several_accounts"]:
        assert len(accounts_of_phone[k["phone_number"]]) >= 2


# --- API, CLI, sample --------------------------------------------------------------------------


def test_sample_writes_gzip_files_and_a_plain_preview(tmp_path: Path) -> None:
    out, preview = tmp_path / "data_sample", tmp_path / "data_preview"
    manifest = datagen.sample(out, preview, seed=1, dirty=True)
    assert manifest["counts"]["accounts"] == 500
    for entry in manifest["files"]:
        plain = (preview / entry["path"].removesuffix(".gz")).read_bytes()
        try:
            content = gzip.decompress((out / entry["path"]).read_bytes())
        except (OSError, EOFError):
            continue  # broken on purpose; the preview shows what it would have said
        assert plain == content
    assert all(manifest["planted"][case] for case in datagen.PLANTED_CASES)


def test_cli_generate_and_rerun_into_the_same_dir(tmp_path: Path) -> None:
    args = [
        "generate",
        "--output-dir",
        str(tmp_path),
        "--accounts",
        "120",
        "--seed",
        "4",
        "--workers",
        "1",
        "--start",
        "2022-01-01",
        "--end",
        "2024-06-30",
    ]
    assert main(args) == 0
    first = _files(tmp_path)
    assert main(args) == 0  # a previous datagen output is replaced
    assert _files(tmp_path) == first
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["args"]["start"] == "2022-01-01"
    assert min(f["file_date"] for f in manifest["files"]) >= "2022-01-01"


def test_refuses_to_write_over_foreign_files(tmp_path: Path) -> None:
    (tmp_path / "MAINTENANCE").mkdir()
    (tmp_path / "MAINTENANCE" / "precious.csv.gz").write_bytes(b"x")
    with pytest.raises(FileExistsError):
        datagen.generate(tmp_path, accounts=100)

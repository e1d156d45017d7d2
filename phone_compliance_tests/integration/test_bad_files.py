"""R1.3 on hostile bytes: every delivered file is read, or rejected whole with its reason, and one
bad file never stops the others; R1.2: a readable file's rows read are its accepted plus rejected
rows, every one of them.

Hypothesis builds the files: gzip members with every header field, several members, truncations
inside a member's header, deflate stream or trailer, flipped bytes, padding and garbage after the
members, headers with random columns, lines with any bytes and line ends, and names of every kind
(impossible dates, unknown tokens, spaces, colons, non-ASCII letters). Whether a file is whole gzip
is judged by CPython's zlib (the inflater Java's reader also builds on), not by the isal code under
test.
"""

from __future__ import annotations

import re
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from phone_compliance import schema
from phone_compliance.ingest import batch as ingestion
from phone_compliance.ingest import bronze
from phone_compliance.ingest.inspect import InspectedFile, inspect
from phone_compliance.ingest.landing import list_landing
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.settings import Settings
from phone_compliance_tests import files as f
from phone_compliance_tests.harness import run_pipeline, table

KEY = b"k" * 32
FILE_REASONS = {*schema.FILE_REJECT_REASONS}  # never FILE_UNREADABLE: no content leads there

# --- gzip, built field by field ------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One gzip member's bytes and where its deflate stream starts and ends."""

    data: bytes
    deflate_start: int
    deflate_end: int


def member(text: bytes, flags: int, level: int, extra: bytes, name: bytes, mtime: int) -> Member:
    """A gzip member (RFC 1952) of `text` with the header fields `flags` asks for."""
    head = b"\x1f\x8b\x08" + bytes([flags]) + struct.pack("<I", mtime) + b"\x00\x03"
    if flags & 4:
        head += struct.pack("<H", len(extra)) + extra
    if flags & 8:
        head += name + b"\x00"
    if flags & 16:
        head += b"comment: " + name + b"\x00"
    if flags & 2:
        head += struct.pack("<H", zlib.crc32(head) & 0xFFFF)
    deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
    body = deflate.compress(text) + deflate.flush()
    trailer = struct.pack("<II", zlib.crc32(text), len(text) & 0xFFFFFFFF)
    return Member(head + body + trailer, len(head), len(head) + len(body))


def whole_gzip(raw: bytes) -> bytes | None:
    """The text of `raw` if it is whole gzip as RFC 1952 and Hadoop's reader take it: members
    back to back, no reserved flags, nothing after the last; None otherwise. Empty: no text."""
    texts = []
    while raw:
        if raw[:2] != b"\x1f\x8b":
            return None
        inflater = zlib.decompressobj(wbits=31)  # refuses reserved flags, checks every CRC
        try:
            texts.append(inflater.decompress(raw))
        except zlib.error:
            return None
        if not inflater.eof:
            return None
        raw = inflater.unused_data
    return b"".join(texts)


def lines_of(text: bytes) -> list[bytes]:
    """Lines as Hadoop's line reader splits them: \\n, \\r\\n or a lone \\r ends one."""
    if not text:
        return []
    return re.split(rb"\r\n|\r|\n", re.sub(rb"(\r\n|\r|\n)\Z", b"", text))


# --- strategies ----------------------------------------------------------------------------

FIELD_TEXT = st.sampled_from(
    [
        "",
        "2450441635032307",
        "2450441635032307P",
        "245044163503230",
        "(620) 529-6605",
        "1-620-529-6605",
        "555",
        "2023-04-05",
        "2023-02-30",
        "Y",
        "N",
        "X",
        "CELL",
        "71",
        "101",
        ' "NP|W ""9"" " ',
        '"',
        "é",
        "\x00",
    ]
)


@st.composite
def delivered_text(
    draw, family: schema.Family, hostile: bool
) -> tuple[bytes, tuple[str, ...] | None]:
    """A file's text and the header it should be read with (None: not a known header); not
    `hostile`: a known header (the lines are anything all the same)."""
    columns = list(family.columns)
    kinds = ["known", "known", "known", "subset", "unknown", "none"] if hostile else ["known"]
    kind = draw(st.sampled_from(kinds))
    if kind == "known":
        header = draw(st.permutations(columns))
    elif kind == "subset":
        header = draw(st.lists(st.sampled_from(columns), min_size=1, max_size=len(columns) + 1))
    elif kind == "unknown":
        header = [*columns[:-1], draw(st.sampled_from(["a", "", "account_number\ufffd", "x y"]))]
    else:
        header = []
    known = len(header) == len(columns) and set(header) == set(columns)
    # Decorations the reader forgives; an odd byte in a name makes the header unknown.
    first = "|".join(
        draw(st.sampled_from([c, f" {c} ", f'"{c}"'])) if kind == "known" else c for c in header
    ).encode()
    if draw(st.booleans()):
        first = "\ufeff".encode() + first
    if hostile and header and draw(st.integers(0, 9)) == 0:
        first += b"\xff"
        known = False
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.booleans()):
            rows.append("|".join(draw(FIELD_TEXT) for _ in header or columns).encode())
        else:
            rows.append(draw(st.binary(max_size=40)))
    ends = st.sampled_from([b"\n", b"\r\n", b"\r"])
    text = first if header else b""
    for row in rows:
        text += draw(ends) + row
    if text and draw(st.booleans()):
        text += draw(ends)
    return text, tuple(h.strip() for h in header) if known else None


@st.composite
def gzip_bytes(draw, text: bytes, hostile: bool) -> bytes:
    """`text` as delivered: gzip in one or more members, maybe broken (`hostile`), or not gzip at
    all."""
    how = draw(
        st.sampled_from(["gzip"] * 6 + ["plain", "empty", "bad_deflate"] if hostile else ["gzip"])
    )
    if how == "plain":
        return text
    if how == "empty":
        return b""
    if how == "bad_deflate":  # the magic, a header, then a block of the reserved type
        return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + draw(
            st.sampled_from([b"\xff", b"\x07"])
        )
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=3)))
    parts = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    members = [
        member(
            part,
            flags=draw(st.sampled_from([0, 0, 1, 2, 4, 8, 16, 30])),
            level=draw(st.integers(0, 9)),
            extra=draw(st.binary(max_size=6)),
            name=draw(st.binary(max_size=6)).replace(b"\x00", b""),
            mtime=draw(st.integers(0, 2**32 - 1)),
        )
        for part in parts
    ]
    starts = [sum(len(m.data) for m in members[:i]) for i in range(len(members))]
    raw = bytearray(b"".join(m.data for m in members))
    faults = ["truncate", "flip", "reserved", "zeros", "garbage", "half_member", "flip_deflate"]
    broken = draw(st.sampled_from(["none"] * 5 + faults if hostile else ["none"]))
    which = draw(st.integers(0, len(members) - 1))
    at, m = starts[which], members[which]
    if broken == "truncate":  # inside the header, the deflate stream or the trailer
        where = draw(st.sampled_from(["header", "deflate", "trailer"]))
        low, high = {
            "header": (1, m.deflate_start),
            "deflate": (m.deflate_start, m.deflate_end),
            "trailer": (m.deflate_end, len(m.data)),
        }[where]
        raw = raw[: at + draw(st.integers(low, max(low, high - 1)))]
    elif broken in ("flip", "flip_deflate"):
        low, high = (
            (0, len(raw)) if broken == "flip" else (at + m.deflate_start, at + m.deflate_end)
        )
        for _ in range(draw(st.integers(1, 3))):
            if high > low:
                raw[draw(st.integers(low, high - 1))] ^= draw(st.integers(1, 255))
    elif broken == "reserved":
        raw[at + 3] |= draw(st.sampled_from([0x20, 0x40, 0x80]))
    elif broken == "zeros":
        raw += b"\x00" * draw(st.integers(1, 9))
    elif broken == "garbage":
        raw += draw(st.binary(min_size=1, max_size=9))
    elif broken == "half_member":
        raw += members[0].data[: draw(st.integers(1, len(members[0].data) - 1))]
    return bytes(raw)


NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00")
ODD_PREFIXES = st.one_of(
    st.sampled_from(["IC A2 RG", "SN:SVC", "pré#fix", "100%", "☃", "a\\b", "[x]{y}", "~$x"]),
    st.text(NAME_CHARS, min_size=1, max_size=8),
)


@st.composite
def file_names(draw, family: schema.Family, seq: int, hostile: bool) -> tuple[str, bool]:
    """A delivered name (unique by `seq`) and whether it must be recognised; not `hostile`: a
    family's usual name or one with an odd prefix."""
    ts = draw(st.datetimes()).strftime("%Y%m%d%H%M%S") + f"{draw(st.integers(0, 999)):03d}"
    if len(ts) != 17:  # a year before 1000
        ts = "2020" + ts[-13:]
    kinds = ["usual"] * 4 + ["odd_prefix"] * 2 + (["impossible", "unknown"] if hostile else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "usual":
        return schema.file_name(family, ts, seq), True
    if kind == "odd_prefix":
        prefix = draw(ODD_PREFIXES)
        name = f"{prefix}-{ts}-{family.infix}_{seq:03d}.csv.gz"
        return name, schema.parse_file_name(name) is not None
    if kind == "impossible":
        bad = draw(st.sampled_from(["13", "00"]))
        stamp = draw(
            st.sampled_from(
                [
                    f"2019{bad}01000000000",
                    "20190230000000000",
                    "20190431120000000",
                    "20190101240000000",
                    "20190101006000000",
                    "20190101000060000",
                    "00000101000000000",
                ]
            )
        )
        return schema.file_name(family, stamp, seq), False
    token = draw(st.sampled_from(["UNKNOWN", "ENRLMT-SUPPLFWD", ""]))
    return f"{family.prefix}-{ts}-{token}_EXPORT_{seq:03d}.csv.gz", False


@dataclass(frozen=True)
class Delivery:
    name: str
    recognised: bool
    raw: bytes
    header: tuple[str, ...] | None  # None: not a known header


@st.composite
def deliveries(draw, family: schema.Family, seq: int, hostile: bool = True) -> Delivery:
    """One delivered file of `family`; `hostile`: any of the ways a file can be bad."""
    name, recognised = draw(file_names(family, seq, hostile))
    text, header = draw(delivered_text(family, hostile))
    return Delivery(name, recognised, draw(gzip_bytes(text, hostile)), header)


FAMILY = st.sampled_from(schema.FAMILIES)


# --- what inspection must say, judged independently -------------------------------------------


def expected(delivery: Delivery) -> tuple[str | None, int]:
    """The reject reason (None: readable) and the rows read the file must get (R1.3, R1.2)."""
    if not delivery.recognised:
        return schema.FILE_BAD_NAME, 0
    text = whole_gzip(delivery.raw)
    if text is None:
        return schema.FILE_BAD_GZIP, 0
    lines = lines_of(text)
    if not lines:
        return schema.FILE_NO_HEADER, 0
    if delivery.header is None:
        return schema.FILE_BAD_HEADER, 0
    return None, len(lines) - 1


def land(folder: Path, family: schema.Family, batch: list[Delivery]) -> list[InspectedFile]:
    """Deliver `batch` into a landing folder and inspect every file, as a batch does."""
    (folder / family.folder).mkdir(parents=True, exist_ok=True)
    for d in batch:
        (folder / family.folder / d.name).write_bytes(d.raw)
    locations = Locations(Settings(landing=str(folder)))
    landed = list_landing(locations)
    assert sorted(x.name for x in landed) == sorted(d.name for d in batch)
    return [inspect(x, locations) for x in landed]


HEADER = "|".join(schema.ENROLLMENT.columns).encode()
ROW = f.line(
    schema.ENROLLMENT, f.enrollment("1234567890123456", "2125550123", "2020-01-03")
).encode()


def gz(text: bytes, flags: int = 0) -> bytes:
    return member(text, flags=flags, level=6, extra=b"", name=b"", mtime=0).data


@pytest.mark.parametrize(
    ("raw", "reason", "rows_read"),
    [
        (b"", schema.FILE_NO_HEADER, 0),
        (gz(b""), schema.FILE_NO_HEADER, 0),
        (gz(HEADER + b"\n"), None, 0),
        (gz(HEADER + b"\xff\n" + ROW), schema.FILE_BAD_HEADER, 0),
        (gz(HEADER + b"\r\n" + ROW.replace(b"|", b"\x00|", 2) + b"\r\n\x00"), None, 2),
        (gz(HEADER + b"\n") + gz(b"") + gz(ROW[:9]) + gz(ROW[9:] + b"\n"), None, 1),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\xff", schema.FILE_BAD_GZIP, 0),
        (gz(HEADER + b"\n" + ROW)[:-3], schema.FILE_BAD_GZIP, 0),
        (gz(HEADER + b"\n" + ROW) + b"\x00" * 4, schema.FILE_BAD_GZIP, 0),
        (gz(HEADER + b"\n" + ROW, flags=0x20), schema.FILE_BAD_GZIP, 0),
        (gz(HEADER + b"\n" + ROW) + b"PK", schema.FILE_BAD_GZIP, 0),
        (HEADER + b"\n" + ROW, schema.FILE_BAD_GZIP, 0),
    ],
    ids=[
        "zero_bytes",
        "empty_gzip",
        "header_only",
        "non_utf8_header",
        "nul_bytes",
        "several_members",
        "bad_deflate_block",
        "truncated",
        "zero_padding",
        "reserved_flags",
        "garbage_after",
        "not_gzip",
    ],
)
def test_r1_3_each_kind_of_file_is_read_or_rejected_whole(tmp_path, raw, reason, rows_read):
    name = schema.file_name(schema.ENROLLMENT, f.ts("2020-01-05"), 1)
    (got,) = land(tmp_path, schema.ENROLLMENT, [Delivery(name, True, raw, None)])
    assert (got.reason, got.rows_read) == (reason, rows_read)


@pytest.mark.parametrize(
    "stamp",
    ["20191399000000000", "20190230000000000", "20190101240000000", "2019010100000000\u0661"],
)
def test_r1_3_a_name_with_an_impossible_date_is_unrecognised(tmp_path, stamp):
    name = f"SN_SVC_DMBDL_DataManager-{stamp}-SUPPLFWD-BDL_EXPORT_001.csv.gz"
    assert schema.parse_file_name(name) is None
    (got,) = land(tmp_path, schema.CHANGE, [Delivery(name, False, gz(HEADER + b"\n"), None)])
    assert (got.reason, got.family, got.file_date) == (schema.FILE_BAD_NAME, None, None)


def test_r1_3_any_other_failure_to_read_a_file_rejects_it_whole(tmp_path):
    name = schema.file_name(schema.ENROLLMENT, f.ts("2020-01-05"), 1)
    path = tmp_path / "ENROLLMENT" / name
    path.parent.mkdir()
    path.write_bytes(gz(HEADER + b"\n" + ROW))
    locations = Locations(Settings(landing=str(tmp_path)))
    (landed,) = list_landing(locations)
    path.unlink()  # gone between listing and reading
    got = inspect(landed, locations)
    assert (got.reason, got.sha256, got.family) == (schema.FILE_UNREADABLE, None, "enrollment")


def test_r1_2_the_reader_reads_odd_but_whole_files_and_names(spark, tmp_path):
    ts = f.ts("2020-01-05")
    batch = [
        Delivery(f"IC A2:{n}-{ts}-ENRLMT-EXPORT_{n:03d}.csv.gz", True, raw, None)
        for n, raw in enumerate(
            [
                gz(HEADER + b"\n"),  # header only
                gz(HEADER + b"\r" + ROW.replace(b"|", b"\x00|", 2) + b"\r\x00\r"),
                gz(HEADER + b"\n") + gz(b"") + gz(ROW[:9]) + gz(ROW[9:] + b"\n" + ROW),
                gz(b"\xef\xbb\xbf" + HEADER + b"\r\n\xff\xfe|\r\n", flags=2 | 4 | 8 | 16),
            ]
        )
    ]
    batch += [
        Delivery(f"{prefix}-{ts}-ENRLMT-EXPORT_009.csv.gz", True, gz(HEADER + b"\n" + ROW), None)
        for prefix in ("pré#fix", "100%20", "a\\b ☃", "[x]?{y}")
    ]
    inspected = land(tmp_path, schema.ENROLLMENT, batch)
    assert all(i.readable for i in inspected)
    rows = bronze.parse_files(spark, schema.ENROLLMENT, inspected, KEY).collect()
    lines: dict[str, list[int]] = {}
    for row in rows:
        lines.setdefault(row["source_file"], []).append(row["line_number"])
    assert {i.file.name: sorted(lines.get(i.file.name, [])) for i in inspected} == {
        i.file.name: list(range(2, i.rows_read + 2)) for i in inspected
    }
    assert sum(i.rows_read for i in inspected) == 9


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_r1_3_inspection_rejects_every_bad_file_whole_with_its_reason(data):
    family = data.draw(FAMILY)
    batch = [data.draw(deliveries(family, seq)) for seq in range(data.draw(st.integers(1, 3)))]
    with tempfile.TemporaryDirectory() as folder:
        inspected = {i.file.name: i for i in land(Path(folder), family, batch)}
    for d in batch:
        got = inspected[d.name]
        event(f"{got.reason or 'readable'}")
        assert (got.reason, got.rows_read) == expected(d), d
        assert got.reason is None or got.reason in FILE_REASONS
        if got.readable:
            assert got.family == family.name and got.header == d.header


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_r1_2_the_reader_returns_every_row_of_every_readable_file(spark, data):
    family = data.draw(FAMILY)
    count = data.draw(st.integers(2, 8))
    # Mostly files inspection passes, so the reader meets many; their lines are anything.
    hostile = st.sampled_from([False, False, True])
    batch = [data.draw(deliveries(family, seq, data.draw(hostile))) for seq in range(count)]
    with tempfile.TemporaryDirectory() as folder:
        inspected = land(Path(folder), family, batch)
        readable = [i for i in inspected if i.readable]
        event(f"readable files: {len(readable)}")
        if not readable:
            return
        # One Spark read per example: every family's readable files, their lineage only.
        frames = [
            bronze.parse_files(spark, fam, files, KEY).select(
                "source_file", "line_number", "reject_reason"
            )
            for fam in schema.FAMILIES
            if (files := [i for i in readable if i.family == fam.name])
        ]
        union = frames[0]
        for frame in frames[1:]:
            union = union.unionByName(frame)
        rows = union.collect()
    lines: dict[str, list[int]] = {}
    for row in rows:
        lines.setdefault(row["source_file"], []).append(row["line_number"])
    for i in readable:
        # Rows read = accepted + rejected (R1.2): one row per line after the header.
        assert sorted(lines.pop(i.file.name, [])) == list(range(2, i.rows_read + 2)), i
    assert not lines  # nothing from a rejected file


def test_r1_3_bad_files_are_rejected_whole_and_the_good_ones_ingested(spark, lake):
    landing = Path(lake.landing)
    good = f.write(
        landing,
        schema.ENROLLMENT,
        "2020-01-05",
        [f.enrollment("1234567890123456", "2125550123", "2020-01-03")],
    )
    odd_name = landing / "ENROLLMENT" / f"IC A2:é#1-{f.ts('2020-01-06')}-ENRLMT-EXPORT_001.csv.gz"
    odd_name.write_bytes(good.read_bytes())
    # The gzip magic, then a compressed block of the reserved type: isal's IsalError.
    bad_deflate = landing / "MAINTENANCE" / schema.file_name(schema.CHANGE, f.ts("2020-02-01"), 1)
    bad_deflate.parent.mkdir(parents=True, exist_ok=True)
    bad_deflate.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\xff\xff\xff")
    impossible = "SN_SVC_DMBDL_DataManager-20191399000000000-SUPPLFWD-BDL_EXPORT_001.csv.gz"
    change = f.change("1234567890123456", "2125550123", "2019-12-01")
    f.write(landing, schema.CHANGE, "2019-12-02", [change]).rename(
        landing / "MAINTENANCE" / impossible
    )
    padded = f.write(landing, schema.CHANGE, "2020-02-02", [change])  # zero padding: Hadoop stops
    padded.write_bytes(padded.read_bytes() + b"\x00" * 8)

    result = run_pipeline(lake)

    assert result.success
    ledger = {r["source_file"]: r for r in table(spark, lake, "bronze/file_ledger").collect()}
    assert {name: (r["status"], r["reason"]) for name, r in ledger.items()} == {
        good.name: (schema.LEDGER_INGESTED, None),
        odd_name.name: (schema.LEDGER_INGESTED, None),
        bad_deflate.name: (schema.LEDGER_REJECTED, schema.FILE_BAD_GZIP),
        impossible: (schema.LEDGER_REJECTED, schema.FILE_BAD_NAME),
        padded.name: (schema.LEDGER_REJECTED, schema.FILE_BAD_GZIP),
    }
    enrolled = table(spark, lake, "bronze/enrollment").groupBy("source_file").count().collect()
    assert {r["source_file"]: r["count"] for r in enrolled} == {good.name: 1, odd_name.name: 1}


def test_r1_3_a_file_spark_cannot_read_after_inspection_is_rejected_and_the_rest_ingested(
    spark, lake, monkeypatch
):
    """A file that changes between its inspection and Spark's read (here: its bytes become
    garbage) is rejected whole as FILE_UNREADABLE; the other files of its family are written."""
    a, b, phone = "1234567890123456", "6543210987654321", "2125550123"
    landing = Path(lake.landing)
    good = f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(a, phone)], seq=1)
    spoiled = f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(b, phone)], seq=2)
    planned = ingestion.plan_batch

    def plan_then_spoil(*args, **kwargs):
        batch = planned(*args, **kwargs)
        spoiled.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 64)  # after inspection
        return batch

    monkeypatch.setattr(ingestion, "plan_batch", plan_then_spoil)
    done = ingestion.ingest(lambda: spark, Locations(lake), b"k" * 32, "run-1")
    ledger = {r["source_file"]: r for r in table(spark, lake, "bronze/file_ledger").collect()}
    assert ledger[good.name]["status"] == schema.LEDGER_INGESTED
    assert ledger[spoiled.name]["status"] == schema.LEDGER_REJECTED
    assert ledger[spoiled.name]["reason"] == schema.FILE_UNREADABLE
    rows = table(spark, lake, "bronze/nonfin_snapshot").collect()
    assert {r["source_file"] for r in rows} == {good.name}
    assert done.rejects_by_reason == {schema.FILE_UNREADABLE: 1}

"""Rows as text, built in columns with pyarrow compute (no Python loop per row).

The costly part, one text per record version (id, legacy id, names, phone, attributes), is
built once; a snapshot is then a `take` of those texts joined with its consent column, and
its bytes are the data buffer of the resulting string array, written as is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datagen import vocab
from datagen.world import World
from phone_compliance import schema

SEP = "|"
_DATE_MARGIN = 4000  # days before the range start that dates may fall on (old consents)


def strings(values: object) -> pa.Array:
    """A pyarrow string array of Python strings."""
    return pa.array(list(values), pa.string())


def take(table: pa.Array, idx: np.ndarray) -> pa.Array:
    """table[idx] for a numpy index."""
    return pc.take(table, pa.array(np.asarray(idx, dtype=np.int64)))


def digits(x: np.ndarray, width: int) -> pa.Array:
    """Integers as zero-padded decimal text."""
    text = pc.cast(pa.array(np.asarray(x, dtype=np.int64)), pa.string())
    return pc.utf8_lpad(text, width, "0")


def join(*cols: pa.Array | str, sep: str = SEP) -> pa.Array:
    """Element-wise concatenation of columns (and constant strings) with a separator."""
    args = [pa.scalar(c, pa.string()) if isinstance(c, str) else c for c in cols]
    return pc.binary_join_element_wise(*args, sep)


def with_newline(col: pa.Array) -> pa.Array:
    """Each text followed by a line end."""
    return pc.binary_join_element_wise(col, pa.scalar("", pa.string()), "\n")


def phone_text(phone: np.ndarray, fmt: np.ndarray) -> pa.Array:
    """Ten-digit numbers written in the raw formats of `vocab.PHONE_FORMATS`."""
    s = digits(phone, 10)
    a = pc.utf8_slice_codeunits(s, 0, 3)
    e = pc.utf8_slice_codeunits(s, 3, 6)
    line = pc.utf8_slice_codeunits(s, 6, 10)
    variants = [
        join("(", a, ") ", e, "-", line, sep=""),
        join(a, e, line, sep="-"),
        s,
        join("1", a, e, line, sep="-"),
        join("+1", a, e, line, sep=" "),
        join(a, e, line, sep="."),
    ]
    assert len(variants) == len(vocab.PHONE_FORMATS)
    return pc.choose(pa.array(np.asarray(fmt, dtype=np.int8)), *variants)


def payload(rows: pa.Array) -> tuple[memoryview, np.ndarray]:
    """The bytes of newline-terminated texts laid end to end, and each row's start offset."""
    if len(rows) == 0:
        return memoryview(b""), np.zeros(1, dtype=np.int64)
    bufs = rows.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32)[rows.offset : rows.offset + len(rows) + 1]
    start, stop = int(offsets[0]), int(offsets[-1])
    return memoryview(bufs[2])[start:stop], offsets.astype(np.int64) - start


def header(family: schema.Family) -> bytes:
    """The header line of a family's files."""
    return (SEP.join(family.columns) + "\n").encode()


@dataclass
class Tables:
    """Texts shared by all files: per record version, per consent state, per day."""

    snapshot_static: pa.Array  # per version: cnsmr_phn_id .. quality score
    cons_tail: pa.Array  # per consent row: "flag|date\n"
    change_rows: pa.Array  # every SUPPLFWD row, in file order
    enroll_rows: pa.Array  # every ENRLMT row, in file order


class _Dates:
    """YYYY-MM-DD texts indexed by day number; an index past the end is the empty string."""

    def __init__(self, first: int, last: int) -> None:
        self.base = first
        days = np.arange(first, last + 1, dtype=np.int64).astype("datetime64[D]")
        text = np.datetime_as_string(days).tolist()
        self.text = strings([*text, ""])
        self.text_nl = strings([t + "\n" for t in text] + ["\n"])
        self.empty = len(text)

    def index(self, day: np.ndarray) -> np.ndarray:
        """Index of each day in the tables."""
        day = np.asarray(day, dtype=np.int64)
        if np.any((day < self.base) | (day - self.base >= self.empty)):
            raise ValueError("a date falls outside the rendered calendar")
        return day - self.base


def build_tables(w: World) -> Tables:
    """Render the shared texts of a world (in the parent, before workers fork)."""
    cal = w.cal
    dates = _Dates(cal.start - _DATE_MARGIN, cal.end + 10)

    # Per consumer and per account texts.
    acct = digits(w.acc_number, 16)
    con_acct = take(acct, w.con_acc)
    letters = take(strings(vocab.CONSUMER_LETTERS), w.con_letter)
    con_legacy = join(con_acct, letters, sep="")
    con_ssn = digits(w.con_ssn, 9)
    con_first = take(strings(vocab.FIRST_NAMES), w.con_first)
    con_last = take(strings(vocab.LAST_NAMES), w.con_last)
    agency = take(strings(w.agencies), w.acc_agency)

    def attr_texts(pairs: np.ndarray, attrset: np.ndarray) -> list[pa.Array]:
        """Type, status, source, technology, score texts (snapshot column order)."""
        a = {k: v[pairs, attrset] for k, v in w.attrs.items()}
        return [
            take(strings(schema.PHONE_TYPES), a["type"]),
            take(strings(schema.PHONE_STATUSES), a["status"]),
            take(strings(schema.PHONE_SOURCES), a["source"]),
            take(strings(schema.PHONE_TECHNOLOGIES), a["tech"]),
            pc.cast(pa.array(a["score"].astype(np.int64)), pa.string()),
        ]

    # Per version: the record as the maintenance system writes it, minus consent.
    vu = w.ver_unit
    vp = w.unit_pair[vu]
    vc = w.unit_con[vu]
    prefix = join(
        take(con_legacy, vc),
        take(agency, w.pair_acc[vp]),
        take(con_ssn, vc),
        take(con_first, vc),
        take(con_last, vc),
        phone_text(w.phone[vp], w.unit_fmt_snapshot[vu]),
        *attr_texts(vp, w.ver_attrset),
    )
    snapshot_static = join(digits(w.ver_id, 8), prefix)

    # Consent table: row 0 is "no information"; then each pair's events in order.
    n_events = (w.cd < 2**30).sum(axis=1)
    ev_pair = np.repeat(np.arange(len(n_events)), n_events)
    ev_k = np.arange(len(ev_pair)) - np.repeat(w.cons_base - 1, n_events)
    flag = np.concatenate([[0], w.cf[ev_pair, ev_k]])
    ev_days = w.cd[ev_pair, ev_k]
    dates.index(ev_days)  # range check
    day_idx = np.where(w.has_consent_date[ev_pair], ev_days - dates.base, dates.empty)
    day_idx = np.concatenate([[dates.empty], day_idx]).astype(np.int64)
    cons_flag = take(strings(("", "Y", "N")), flag)
    cons_mid = join(cons_flag, take(dates.text, day_idx))
    cons_tail = with_newline(cons_mid)

    # Change rows (SUPPLFWD): few, so rendered whole here.
    ch_ver = w.version_at(w.ch_unit, w.ch_day)
    ch_cons = np.where(w.ch_blank, 0, w.consent_at(w.unit_pair[w.ch_unit], w.ch_day))
    change_rows = join(
        digits(w.ch_id, 8),
        take(prefix, ch_ver),
        take(cons_mid, ch_cons),
        take(strings(("N", "Y")), w.ch_sd),
        take(dates.text_nl, dates.index(w.ch_day)),
    )

    # Enrollment rows (ENRLMT): another system, its own column order and phone formats.
    eu = w.en_unit
    ep = w.unit_pair[eu]
    ec = w.unit_con[eu]
    typ, status, source, tech, score = attr_texts(ep, np.zeros(len(eu), dtype=np.int64))
    enroll_rows = join(
        take(acct, w.pair_acc[ep]),
        take(con_legacy, ec),
        take(agency, w.pair_acc[ep]),
        take(con_ssn, ec),
        take(con_first, ec),
        take(con_last, ec),
        phone_text(w.phone[ep], w.unit_fmt_enroll[eu]),
        typ,
        tech,
        status,
        source,
        score,
        take(dates.text_nl, dates.index(w.en_day)),
    )
    return Tables(
        snapshot_static=snapshot_static,
        cons_tail=cons_tail,
        change_rows=change_rows,
        enroll_rows=enroll_rows,
    )


def snapshot_rows(w: World, t: Tables, j: int, part: int, parts: int) -> pa.Array:
    """The rows of part `part` (0-based) of `parts` of snapshot j."""
    _, versions, consent = w.snapshot_units(j)
    n = len(versions)
    lo, hi = n * part // parts, n * (part + 1) // parts
    return join(take(t.snapshot_static, versions[lo:hi]), take(t.cons_tail, consent[lo:hi]))


def file_rows(table: pa.Array, files: np.ndarray, dup: np.ndarray, i: int) -> pa.Array:
    """Rows of file i from a table sorted by file, planted duplicates repeated in place."""
    lo, hi = np.searchsorted(files, [i, i + 1])
    idx = np.repeat(np.arange(lo, hi), 1 + dup[lo:hi].astype(np.int64))
    return take(table, idx)

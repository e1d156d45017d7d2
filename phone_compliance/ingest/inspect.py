"""Inspecting a delivered file before Spark reads it (R1.3).

Inspection decompresses a file once in Python to prove it is whole gzip, exactly as Bronze's
reader will read it, with a known header, and counts its lines the way Spark's line reader splits
them (`\\n`, `\\r\\n`, `\\r`), so that rows read can be reconciled with rows accepted + rejected
(R1.2). A file that fails a check, or whose inspection fails in any other way, is rejected whole
with its reason: inspecting one file never raises, so one bad file never stops the others.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import multiprocessing
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from isal import isal_zlib
from isal.igzip_lib import IsalError

from phone_compliance import schema
from phone_compliance.ingest.landing import LandingFile, read_bytes
from phone_compliance.lakehouse.locations import Locations

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InspectedFile:
    """A delivered file after inspection: readable (status INGESTED-to-be) or rejected whole."""

    file: LandingFile
    sha256: str | None  # None when its bytes could not be read
    family: str | None
    file_date: str | None
    file_ts: str | None
    header: tuple[str, ...]
    rows_read: int  # data lines, header excluded
    reason: str | None  # a FILE_* code when the file is rejected whole (R1.3)

    @property
    def readable(self) -> bool:
        return self.reason is None


def count_lines(text: bytes) -> int:
    """Lines as Spark's line reader splits them: `\\n`, `\\r\\n` and a lone `\\r` end a line."""
    if not text:
        return 0
    ends = text.count(b"\n")
    if b"\r" in text:  # rare: two more passes over the text
        ends += text.count(b"\r") - text.count(b"\r\n")
    return ends + (0 if text.endswith((b"\n", b"\r")) else 1)


class BadGzip(ValueError):
    """The bytes are not whole gzip as Bronze's reader reads it (FILE_BAD_GZIP)."""


_MAGIC = b"\x1f\x8b"
_RESERVED_FLAGS = 0xE0  # FLG bits 5-7 (RFC 1952: a reader must refuse them)
_CHUNK = 1 << 20


def gunzip(raw: bytes) -> bytes:
    """The text of a whole gzip file, exactly as Bronze's reader (Hadoop's gzip codec) reads it.

    One or more members back to back (their texts joined) and nothing after them: zero padding
    after a member, or reserved header flags, which isal alone would pass, stop Hadoop's codec, so
    they raise `BadGzip` here. A zero-byte file holds no text. isal raises `IsalError` on a broken
    member (bad deflate block, checksum, length, or truncated).
    """
    view = memoryview(raw)
    texts: list[bytes] = []
    at = 0
    while at < len(raw):
        if raw[at : at + 2] != _MAGIC or (len(raw) > at + 3 and raw[at + 3] & _RESERVED_FLAGS):
            raise BadGzip(f"byte {at} does not start a gzip member (or sets reserved flags)")
        member = isal_zlib.decompressobj(wbits=31)  # gzip: checks header CRC, CRC-32, length
        # The first member (usually the whole file) in one call; any later one a chunk at a time,
        # so a file of many members is not copied once per member.
        size = len(raw) - at if not texts else _CHUNK
        while not member.eof:
            chunk = view[at : at + size]
            if not chunk:
                raise BadGzip("the file ends inside a gzip member")
            texts.append(member.decompress(chunk))
            at += len(chunk) - len(member.unused_data)
    return texts[0] if len(texts) == 1 else b"".join(texts)


def header_of(text: bytes) -> tuple[str, ...]:
    """The column names of the first line, as the reader splits it (any bytes, any line end)."""
    newline = text.find(b"\n")  # not split: that would copy the whole text after it
    first = (text if newline < 0 else text[:newline]).split(b"\r", 1)[0]
    return tuple(
        name.strip().strip('"')
        for name in first.decode("utf-8", "replace").lstrip("\ufeff").split("|")
    )


def inspect(file: LandingFile, locations: Locations) -> InspectedFile:
    """Prove one file readable (R1.3) and count its rows, or say why it is rejected whole.

    Never raises for one file: any failure to read or inspect it rejects it whole
    (FILE_UNREADABLE), so one bad file never stops the others (R1.3).
    """
    parsed: schema.FileName | None = None
    digest: str | None = None
    try:
        parsed = schema.parse_file_name(file.name)
        raw = read_bytes(file, locations)
        digest = hashlib.sha256(raw).hexdigest()
        return _inspect_bytes(file, parsed, raw, digest)
    except Exception as error:  # R1.3: any other failure to read it
        log.warning("%s rejected whole (%s): %r", file.relpath, schema.FILE_UNREADABLE, error)
        return _rejected(file, parsed, digest, schema.FILE_UNREADABLE)


def _rejected(
    file: LandingFile,
    parsed: schema.FileName | None,
    digest: str | None,
    reason: str,
    header: tuple[str, ...] = (),
) -> InspectedFile:
    return InspectedFile(
        file=file,
        sha256=digest,
        family=parsed.family.name if parsed else None,
        file_date=parsed.file_date if parsed else None,
        file_ts=parsed.file_ts if parsed else None,
        header=header,
        rows_read=0,
        reason=reason,
    )


def _inspect_bytes(
    file: LandingFile, parsed: schema.FileName | None, raw: bytes, digest: str
) -> InspectedFile:
    if parsed is None:
        return _rejected(file, parsed, digest, schema.FILE_BAD_NAME)
    try:
        text = gunzip(raw)
    except (BadGzip, IsalError):
        return _rejected(file, parsed, digest, schema.FILE_BAD_GZIP)
    lines = count_lines(text)
    if lines == 0:
        return _rejected(file, parsed, digest, schema.FILE_NO_HEADER)
    header = header_of(text)
    expected = parsed.family.columns
    if len(header) != len(expected) or set(header) != set(expected):
        return _rejected(file, parsed, digest, schema.FILE_BAD_HEADER, header)
    return InspectedFile(
        file=file,
        sha256=digest,
        family=parsed.family.name,
        file_date=parsed.file_date,
        file_ts=parsed.file_ts,
        header=header,
        rows_read=lines - 1,
        reason=None,
    )


def inspect_all(
    files: Iterable[LandingFile], locations: Locations, workers: int | None = None
) -> list[InspectedFile]:
    """Inspect files in parallel processes (gunzip is the cost), keeping their order."""
    files = list(files)
    one = functools.partial(inspect, locations=locations)
    if len(files) <= 2:
        return [one(f) for f in files]
    # spawn, not fork: the caller may hold a JVM and its threads.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers or os.cpu_count() or 2, mp_context=context) as pool:
        return list(pool.map(one, files, chunksize=4))

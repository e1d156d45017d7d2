"""Inspecting a delivered file before Spark reads it (R1.3).

Inspection decompresses a file once in Python to prove it is whole gzip with a known header, and
counts its lines the way Spark's line reader splits them (`\\n`, `\\r\\n`, `\\r`), so that rows read
can be reconciled with rows accepted + rejected (R1.2).
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from isal import igzip

from phone_compliance import schema
from phone_compliance.ingest.landing import LandingFile, read_bytes
from phone_compliance.lakehouse.locations import Locations


@dataclass(frozen=True)
class InspectedFile:
    """A delivered file after inspection: readable (status INGESTED-to-be) or rejected whole."""

    file: LandingFile
    sha256: str
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


def inspect(file: LandingFile, locations: Locations) -> InspectedFile:
    """Prove one file readable (R1.3) and count its rows, or say why it is rejected whole."""
    raw = read_bytes(file, locations)
    digest = hashlib.sha256(raw).hexdigest()
    parsed = schema.parse_file_name(file.name)

    def rejected(reason: str, header: tuple[str, ...] = ()) -> InspectedFile:
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

    if parsed is None:
        return rejected(schema.FILE_BAD_NAME)
    try:
        text = igzip.decompress(raw)
    except (OSError, EOFError, ValueError):
        return rejected(schema.FILE_BAD_GZIP)
    lines = count_lines(text)
    if lines == 0:
        return rejected(schema.FILE_NO_HEADER)
    newline = text.find(b"\n")  # not split: that would copy the whole text after it
    first = (text if newline < 0 else text[:newline]).split(b"\r", 1)[0]
    header = tuple(
        name.strip().strip('"')
        for name in first.decode("utf-8", "replace").lstrip("\ufeff").split("|")
    )
    expected = parsed.family.columns
    if len(header) != len(expected) or set(header) != set(expected):
        return rejected(schema.FILE_BAD_HEADER, header)
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

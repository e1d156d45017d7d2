"""The landing zone: listing delivered files and inspecting each one before Spark reads it (R1.3).

Inspection decompresses a file once in Python to prove it is whole gzip with a known header, and
counts its lines the way Spark's line reader splits them (`\\n`, `\\r\\n`, `\\r`), so that rows read
can be reconciled with rows accepted + rejected (R1.2).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from isal import igzip

from phone_compliance import schema

FAMILY_FOLDERS = tuple(sorted({f.folder for f in schema.FAMILIES}))


@dataclass(frozen=True)
class LandingFile:
    """One delivered file, wherever it lands."""

    uri: str  # what Spark reads: file:///… or s3a://bucket/key
    relpath: str  # e.g. MAINTENANCE/SN_…csv.gz
    size: int
    fingerprint: str  # changes when the content may have changed (S3 ETag; local size+mtime)

    @property
    def name(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]


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


def _s3_parts(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def s3_client():
    """A boto3 S3 client honouring PHONE_COMPLIANCE_S3_ENDPOINT (credentials: the AWS chain)."""
    import boto3

    return boto3.client("s3", endpoint_url=os.environ.get("PHONE_COMPLIANCE_S3_ENDPOINT"))


def list_landing(landing: str) -> list[LandingFile]:
    """Every file in the landing's family folders, sorted by relative path."""
    if landing.startswith(("s3://", "s3a://")):
        return _list_s3(landing)
    root = Path(landing.removeprefix("file://")).resolve()
    found = []
    for folder in FAMILY_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.iterdir() if p.is_file()):
            stat = path.stat()
            found.append(
                LandingFile(
                    uri=path.as_uri(),
                    relpath=f"{folder}/{path.name}",
                    size=stat.st_size,
                    fingerprint=f"{stat.st_size}:{stat.st_mtime_ns}",
                )
            )
    return found


def _list_s3(landing: str) -> list[LandingFile]:
    bucket, prefix = _s3_parts(landing)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    client = s3_client()
    found = []
    for folder in FAMILY_FOLDERS:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}{folder}/"):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix) :]
                if rel.endswith("/") or rel.count("/") != 1:
                    continue
                found.append(
                    LandingFile(
                        uri=f"s3a://{bucket}/{obj['Key']}",
                        relpath=rel,
                        size=obj["Size"],
                        fingerprint=obj["ETag"].strip('"'),
                    )
                )
    return sorted(found, key=lambda f: f.relpath)


def read_bytes(file: LandingFile) -> bytes:
    """The file's delivered (compressed) bytes."""
    if file.uri.startswith("s3a://"):
        bucket, key = _s3_parts(file.uri)
        return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return Path(urlparse(file.uri).path).read_bytes()


def count_lines(text: bytes) -> int:
    """Lines as Spark's line reader splits them: `\\n`, `\\r\\n` and a lone `\\r` end a line."""
    if not text:
        return 0
    ends = text.count(b"\n")
    if b"\r" in text:  # rare: two more passes over the text
        ends += text.count(b"\r") - text.count(b"\r\n")
    return ends + (0 if text.endswith((b"\n", b"\r")) else 1)


def inspect(file: LandingFile) -> InspectedFile:
    """Prove one file readable (R1.3) and count its rows, or say why it is rejected whole."""
    raw = read_bytes(file)
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


def inspect_all(files: Iterable[LandingFile], workers: int | None = None) -> list[InspectedFile]:
    """Inspect files in parallel processes (gunzip is the cost), keeping their order."""
    files = list(files)
    if len(files) <= 2:
        return [inspect(f) for f in files]
    # spawn, not fork: the caller may hold a JVM and its threads.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers or os.cpu_count() or 2, mp_context=context) as pool:
        return list(pool.map(inspect, files, chunksize=4))

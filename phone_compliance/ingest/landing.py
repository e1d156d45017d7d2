"""The landing zone: the delivered files in a folder or under an S3 prefix, and their bytes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from phone_compliance import schema
from phone_compliance.lakehouse.locations import Locations, local_path

FAMILY_FOLDERS = tuple(sorted({f.folder for f in schema.FAMILIES}))


@dataclass(frozen=True)
class LandingFile:
    """One delivered file, wherever it lands."""

    # What Spark reads: file:///… or s3a://bucket/key, unescaped, as Hadoop's Path takes its text
    # (a name with a space, `#`, `%` or a non-ASCII letter is opened as it is spelled).
    uri: str
    relpath: str  # e.g. MAINTENANCE/SN_…csv.gz
    size: int
    fingerprint: str  # changes when the content may have changed (S3 ETag; local size+mtime)

    @property
    def name(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]


def _s3_parts(uri: str) -> tuple[str, str]:
    """Bucket and key of an unescaped s3:// or s3a:// URI (a key may hold `#` or `?`)."""
    bucket, _, key = uri.partition("://")[2].partition("/")
    return bucket, key.lstrip("/")


def list_landing(locations: Locations) -> list[LandingFile]:
    """Every file in the landing's family folders, sorted by relative path."""
    if locations.landing.startswith(("s3://", "s3a://")):
        return _list_s3(locations)
    root = local_path(locations.landing).resolve()
    found = []
    for folder in FAMILY_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.iterdir() if p.is_file()):
            stat = path.stat()
            found.append(
                LandingFile(
                    uri=f"file://{path}",
                    relpath=f"{folder}/{path.name}",
                    size=stat.st_size,
                    fingerprint=f"{stat.st_size}:{stat.st_mtime_ns}",
                )
            )
    return found


def s3_landing_files(bucket: str, prefix: str, objects) -> list[LandingFile]:
    """Listed S3 objects that are delivered files: directly inside a family folder of the landing
    prefix (`prefix` ends with / or is empty); the ETag is the fingerprint."""
    found = []
    for obj in objects:
        relpath = obj["Key"][len(prefix) :]
        folder, _, name = relpath.partition("/")
        if folder not in FAMILY_FOLDERS or not name or "/" in name:
            continue
        found.append(
            LandingFile(
                uri=f"s3a://{bucket}/{obj['Key']}",
                relpath=relpath,
                size=obj["Size"],
                fingerprint=obj["ETag"].strip('"'),
            )
        )
    return sorted(found, key=lambda f: f.relpath)


def s3_landing_prefix(landing: str) -> tuple[str, str]:
    """The bucket and key prefix (empty or ending with /) of an s3:// landing URI."""
    bucket, prefix = _s3_parts(landing)
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _list_s3(locations: Locations) -> list[LandingFile]:
    bucket, prefix = s3_landing_prefix(locations.landing)
    paginator = locations.s3_client().get_paginator("list_objects_v2")
    objects = [
        obj
        for folder in FAMILY_FOLDERS
        for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}{folder}/")
        for obj in page.get("Contents", [])
    ]
    return s3_landing_files(bucket, prefix, objects)


def read_bytes(file: LandingFile, locations: Locations) -> bytes:
    """The file's delivered (compressed) bytes."""
    if file.uri.startswith("s3a://"):
        bucket, key = _s3_parts(file.uri)
        return locations.s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return Path(file.uri.removeprefix("file://")).read_bytes()

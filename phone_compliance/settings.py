"""Where data lives and which world we run in: every setting comes from the environment here.

`PHONE_COMPLIANCE_ENV` picks the world (`local` or `production`); `pipeline.resources` turns it into
resources in one place.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _local_default(name: str) -> str:
    return str(PROJECT_ROOT / name)


def is_remote(uri: str) -> bool:
    """True for object-store URIs (s3://, s3a://) rather than local folders."""
    return "://" in uri and not uri.startswith("file://")


@dataclass(frozen=True)
class Settings:
    """The settings of one deployment, read from the environment."""

    env: str
    landing: str
    warehouse: str
    driver_memory: str
    shuffle_partitions: int
    s3_endpoint: str | None

    @property
    def production(self) -> bool:
        return self.env == "production"

    def table_uri(self, layer: str, name: str) -> str:
        """`<warehouse>/<layer>/<name>`, as Spark wants it (s3:// becomes s3a://)."""
        base = self.warehouse.rstrip("/")
        if base.startswith("s3://"):
            base = "s3a://" + base[len("s3://") :]
        return f"{base}/{layer}/{name}"


def load_settings() -> Settings:
    """Settings from the environment, with the embedded local defaults."""
    env = os.environ.get("PHONE_COMPLIANCE_ENV", "local")
    if env not in ("local", "production"):
        raise ValueError(f"PHONE_COMPLIANCE_ENV must be 'local' or 'production', not {env!r}")
    return Settings(
        env=env,
        landing=os.environ.get("PHONE_COMPLIANCE_LANDING", _local_default("data_sample")),
        warehouse=os.environ.get("PHONE_COMPLIANCE_WAREHOUSE", _local_default("warehouse")),
        driver_memory=os.environ.get("PHONE_COMPLIANCE_DRIVER_MEMORY", "6g"),
        shuffle_partitions=int(os.environ.get("PHONE_COMPLIANCE_SHUFFLE_PARTITIONS", "8")),
        s3_endpoint=os.environ.get("PHONE_COMPLIANCE_S3_ENDPOINT"),
    )


def ssn_hash_key() -> bytes:
    """The 32-byte key of Bronze's keyed SSN hash, derived from a setting never in the repo.

    Production must set `PHONE_COMPLIANCE_SSN_HASH_KEY` (from the Databricks secret scope). Locally
    a random key is made once and kept in the git-ignored Dagster home, so hashes stay stable.
    """
    value = os.environ.get("PHONE_COMPLIANCE_SSN_HASH_KEY")
    if value:
        return hashlib.sha256(value.encode()).digest()
    if load_settings().production:
        raise RuntimeError("PHONE_COMPLIANCE_SSN_HASH_KEY must be set in production")
    key_file = dagster_home() / "ssn_hash_key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return hashlib.sha256(key_file.read_text().strip().encode()).digest()


def dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to the project-local `.dagster_home/` (kept across runs)."""
    return Path(os.environ.get("DAGSTER_HOME", _local_default(".dagster_home")))

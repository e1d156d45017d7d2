"""The settings of one deployment: a plain value, read from the environment once.

`PHONE_COMPLIANCE_ENV` picks the world (`local` or `production`); `pipeline.resources` turns a
`Settings` into that world's resources, and `lakehouse.locations` derives every location from it.
The CLI builds a `Settings` (environment plus its flags) and hands it down; nothing edits
`os.environ` to pass a setting.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVS = ("local", "production")


def _local_default(name: str) -> str:
    return str(PROJECT_ROOT / name)


def _spark_conf(text: str) -> tuple[tuple[str, str], ...]:
    """`key=value` pairs separated by commas or new lines (PHONE_COMPLIANCE_SPARK_CONF)."""
    pairs = []
    for item in text.replace("\n", ",").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"PHONE_COMPLIANCE_SPARK_CONF: {item.strip()!r} is not key=value")
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)


@dataclass(frozen=True)
class Settings:
    """Where data lands and lives, how big Spark is, and which world this is."""

    env: str = "local"
    landing: str = field(default_factory=lambda: _local_default("data_sample"))
    warehouse: str = field(default_factory=lambda: _local_default("warehouse"))
    driver_memory: str = "6g"
    shuffle_partitions: int = 8
    s3_endpoint: str | None = None
    aws_region: str | None = None
    # The serving index folder; None: beside a local warehouse (see lakehouse.locations).
    index_dir: str | None = None
    dagster_home: str = field(default_factory=lambda: _local_default(".dagster_home"))
    spark_master: str = "local[*]"
    # Extra Spark confs, applied last (PHONE_COMPLIANCE_SPARK_CONF="k=v,k=v").
    spark_conf: tuple[tuple[str, str], ...] = ()
    # The secret of Bronze's keyed SSN hash; never printed.
    ssn_hash_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.env not in ENVS:
            raise ValueError(
                f"PHONE_COMPLIANCE_ENV must be 'local' or 'production', not {self.env!r}"
            )

    @property
    def production(self) -> bool:
        return self.env == "production"

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the given fields changed; None leaves a field as it is (CLI flags)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment, with the embedded local defaults."""
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            env=env.get("PHONE_COMPLIANCE_ENV", defaults.env),
            landing=env.get("PHONE_COMPLIANCE_LANDING", defaults.landing),
            warehouse=env.get("PHONE_COMPLIANCE_WAREHOUSE", defaults.warehouse),
            driver_memory=env.get("PHONE_COMPLIANCE_DRIVER_MEMORY", defaults.driver_memory),
            shuffle_partitions=int(
                env.get("PHONE_COMPLIANCE_SHUFFLE_PARTITIONS", defaults.shuffle_partitions)
            ),
            s3_endpoint=env.get("PHONE_COMPLIANCE_S3_ENDPOINT") or None,
            aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            index_dir=env.get("PHONE_COMPLIANCE_INDEX") or None,
            dagster_home=env.get("DAGSTER_HOME") or defaults.dagster_home,
            spark_master=env.get("PHONE_COMPLIANCE_SPARK_MASTER") or defaults.spark_master,
            spark_conf=_spark_conf(env.get("PHONE_COMPLIANCE_SPARK_CONF", "")),
            ssn_hash_key=env.get("PHONE_COMPLIANCE_SSN_HASH_KEY") or None,
        )


def load_settings() -> Settings:
    """Settings from this process's environment."""
    return Settings.from_env()

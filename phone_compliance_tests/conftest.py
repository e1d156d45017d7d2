"""Shared fixtures: one local Spark session for the whole test run, and temporary lakehouses."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis.configuration import set_hypothesis_home_dir

from phone_compliance.ingest import parser
from phone_compliance.lakehouse.spark import build_spark_session, spark_config
from phone_compliance.settings import Settings

# Tests write nothing into the source tree: hypothesis's folder (its caches) in a temporary
# one, and no example database.
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="hypothesis-"))
hypothesis_settings.register_profile("phone_compliance", database=None)
hypothesis_settings.load_profile("phone_compliance")


def lake_settings(tmp: Path) -> Settings:
    """Settings for a landing folder and warehouse under `tmp`, sized for tests."""
    return Settings(
        env="local",
        landing=str(tmp / "landing"),
        warehouse=str(tmp / "warehouse"),
        driver_memory=os.environ.get("PHONE_COMPLIANCE_DRIVER_MEMORY", "3g"),
        shuffle_partitions=2,
        s3_endpoint=os.environ.get("PHONE_COMPLIANCE_S3_ENDPOINT"),
        dagster_home=str(tmp / "dagster_home"),
        spark_master="local[2]",
        ssn_hash_key="test-only-key",
    )


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """A local SparkSession with Delta, the UI off; built by the project's one factory."""
    conf = spark_config(
        lake_settings(tmp_path_factory.mktemp("spark")), jars=[parser.jar()], ui=False
    )
    session = build_spark_session(conf)
    yield session
    session.stop()


@pytest.fixture
def lake(tmp_path) -> Settings:
    """Settings for a fresh landing folder and warehouse under a temporary directory."""
    settings = lake_settings(tmp_path)
    Path(settings.landing).mkdir(parents=True)
    return settings


@pytest.fixture(autouse=True, scope="session")
def _ssn_key():
    os.environ.setdefault("PHONE_COMPLIANCE_SSN_HASH_KEY", "test-only-key")

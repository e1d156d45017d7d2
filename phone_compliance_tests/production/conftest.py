"""Fixtures of the production tests: a real S3 API (moto's server mode on 127.0.0.1), lakehouses
in it, and the local Spark session pointed at it through s3a.

Nothing here is mocked in-process: boto3, delta-rs and Spark's s3a all speak HTTP to the moto
server, with moto's dummy credentials given through the standard AWS provider chain (environment
variables, and the JVM's system properties because the session's JVM may predate them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from phone_compliance.settings import PROJECT_ROOT, Settings
from phone_compliance_tests.conftest import lake_settings
from phone_compliance_tests.processes import (
    LOOPBACK,
    free_port,
    start_group,
    stop_group,
    wait_until,
)

REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory) -> str:
    """One moto server for the session, its own process on a free port of 127.0.0.1."""
    port = free_port()
    endpoint = f"http://{LOOPBACK}:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    server = start_group(
        [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)], os.environ, log
    )
    try:
        wait_until("moto", lambda: _answers(endpoint), [server], [log], timeout=60)
        yield endpoint
    finally:
        stop_group(server, grace=5)


def _answers(endpoint: str) -> bool:
    with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
        return True


@pytest.fixture
def aws_env(moto_endpoint, monkeypatch) -> str:
    """The AWS provider chain and the project's S3 endpoint setting, pointed at moto."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        **DUMMY_CREDENTIALS,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PHONE_COMPLIANCE_S3_ENDPOINT", moto_endpoint)
    return moto_endpoint


@pytest.fixture
def s3_spark(spark, aws_env):
    """The session's Spark, reaching moto through s3a (Hadoop settings can change at runtime)."""
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in {
        "fs.s3a.endpoint": aws_env,
        "fs.s3a.endpoint.region": REGION,
        "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": "false",
    }.items():
        hadoop.set(key, value)
    system = spark.sparkContext._jvm.java.lang.System
    system.setProperty("aws.accessKeyId", DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"])
    system.setProperty("aws.secretAccessKey", DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    system.setProperty("aws.region", REGION)
    return spark


@dataclass(frozen=True)
class S3Lake:
    """A bucket holding a landing zone and a warehouse, and a local folder to write files in."""

    settings: Settings
    bucket: str
    staging: Path  # files.write() writes here; upload() delivers them to the landing prefix

    def upload(self, *paths: Path) -> list[str]:
        """Deliver files (all staged files when none are named) as the client would: PutObject."""
        client = s3_client()
        keys = []
        for path in paths or sorted(p for p in self.staging.rglob("*") if p.is_file()):
            key = f"landing/{path.relative_to(self.staging).as_posix()}"
            client.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())
            keys.append(key)
        return keys

    def keys(self, prefix: str) -> list[str]:
        pages = (
            s3_client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


def s3_client():
    import boto3

    return boto3.client(
        "s3", endpoint_url=os.environ["PHONE_COMPLIANCE_S3_ENDPOINT"], region_name=REGION
    )


@pytest.fixture
def s3_lake(aws_env, tmp_path, monkeypatch) -> S3Lake:
    """A fresh bucket: landing under s3://<bucket>/landing, Delta tables under .../warehouse."""
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    s3_client().create_bucket(Bucket=bucket)
    monkeypatch.setenv("PHONE_COMPLIANCE_INDEX", str(tmp_path / "index"))
    settings = replace(
        lake_settings(tmp_path),
        landing=f"s3://{bucket}/landing",
        warehouse=f"s3://{bucket}/warehouse",
        s3_endpoint=aws_env,
    )
    staging = tmp_path / "delivered"
    staging.mkdir()
    return S3Lake(settings=settings, bucket=bucket, staging=staging)


@pytest.fixture(scope="session")
def postgres() -> dict[str, str]:
    """A real PostgreSQL server on 127.0.0.1 (.ci/postgres.sh: Debian's package, started here when
    not running already, and stopped at the end if it was started here)."""
    script = PROJECT_ROOT / ".ci" / "postgres.sh"
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"no PostgreSQL server: .ci/postgres.sh failed: {done.stderr.strip()[-500:]}")
    *settings, state = done.stdout.split()
    yield dict(line.split("=", 1) for line in settings)
    if state == "started":
        subprocess.run(["bash", str(script), "stop"], check=True)


@pytest.fixture
def production_instance(postgres, tmp_path, monkeypatch):
    """The Dagster instance of production: deploy/dagster/dagster.yaml as shipped, on a fresh
    database of the PostgreSQL server, through dagster-postgres."""
    import dagster as dg
    import psycopg2

    database = f"dagster_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(
        host=postgres["DAGSTER_PG_HOST"],
        port=postgres["DAGSTER_PG_PORT"],
        user=postgres["DAGSTER_PG_USERNAME"],
        password=postgres["DAGSTER_PG_PASSWORD"],
        dbname=postgres["DAGSTER_PG_DB"],
    )
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {database}")
    for name, value in {**postgres, "DAGSTER_PG_DB": database}.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster" / "dagster.yaml", home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        yield instance
    finally:
        instance.dispose()
        admin.cursor().execute(f"DROP DATABASE {database} WITH (FORCE)")
        admin.close()

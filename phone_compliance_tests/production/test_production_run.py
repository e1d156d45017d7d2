"""Production end to end, where only the Databricks workspace is mocked.

The production code location (`PHONE_COMPLIANCE_ENV=production`, landing and warehouse in S3)
runs `refresh_decisions` on the production Dagster instance (deploy/dagster/dagster.yaml as
shipped, on a real PostgreSQL server through dagster-postgres). Bronze, Silver and Gold go
through the real dagster-databricks PySpark step launcher to `databricks_standin.py`, a local
stand-in for the workspace's REST API that runs each step in a driver subprocess; the steps read
and write Delta tables in S3 (moto's server), and take the SSN hash key from the workspace's
secret scope. The checks and the decision index run here, in the code location.

Each step's driver runs on its cluster's own Python environment, not this one. The environment
is a new virtual environment of this Python. The runtime layer goes in first: pyspark and
delta-spark at this environment's versions, because the runtime brings those. Then exactly the
`libraries` the launcher submitted. So the library list that remote.py builds is tested: a
package missing from it is an ImportError on the driver, as on Databricks. The project itself
comes only from the launcher's code.zip, so a package staged without its jar fails too.

uv installs the packages offline, from the local uv cache, which `uv sync` filled with every
wheel needed. It goes to PyPI only when the cache lacks something. That happens on a machine's
first session: `uv sync` stores wheels, but not the index pages that `uv pip install` resolves
with. Each environment records in `sources` which of the two it used. One environment is built
per distinct library list and kept for the session, so the three steps of a run share one.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

import phone_compliance
from phone_compliance import schema
from phone_compliance.lakehouse.spark import spark_config
from phone_compliance.pipeline.assets import PHONE_CONSENT_KEY
from phone_compliance.settings import PROJECT_ROOT
from phone_compliance_tests import files as f
from phone_compliance_tests.harness import failed_checks, table
from phone_compliance_tests.production.conftest import DUMMY_CREDENTIALS, REGION
from phone_compliance_tests.production.databricks_standin import DatabricksStandin, Runtime

A, B = "1234567890123456", "6543210987654321"
PHONE = "2125550123"
SSN_KEY = "secret-scope-key"  # only the workspace's secret scope holds it
HEAVY_STEPS = {
    "bronze_ingest",
    "silver__pair_evidence",
    "silver__pair_state",
    "gold__phone_consent",
    "gold__decision_history",
    "gold__decision_changes",
}


@pytest.fixture(scope="session")
def databricks_runtime(tmp_path_factory) -> Runtime:
    """The runtime of the stand-in's clusters (this Python, with pyspark and delta-spark), and
    the cluster environments built on it: one per distinct library list, kept for the session."""
    return Runtime.like_this_environment(tmp_path_factory.mktemp("databricks-runtime"))


@pytest.fixture
def workspace(s3_lake, databricks_runtime, tmp_path):
    """The Databricks stand-in: a runtime whose Spark reaches S3 (moto), credentials from the
    cluster's instance profile (here moto's dummy keys), the project's secret scope."""
    from dataclasses import replace

    runtime = spark_config(replace(s3_lake.settings, driver_memory="1g"), ui=False)
    runtime |= {
        "spark.master": "local[2]",
        "spark.hadoop.fs.s3a.endpoint.region": REGION,
        # A driver lives for one small step: the quick JIT tier is the faster one here.
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    }
    standin = DatabricksStandin(
        root=tmp_path / "workspace",
        token="standin-token",
        secrets={"phone-compliance": {"ssn-hash-key": SSN_KEY}},
        runtime=databricks_runtime,
        runtime_conf=runtime,
        cluster_env={**DUMMY_CREDENTIALS, "AWS_REGION": REGION},
    )
    standin.start()
    yield standin
    standin.stop()


@pytest.fixture
def run_config(request) -> dict:
    """The `run_config` of the launcher's deployment file; a test changes it by indirect
    parametrization."""
    return {
        "run_name": "phone-compliance",
        "cluster": {
            "new": {
                "spark_version": "17.3.x-scala2.13",
                "nodes": {"node_types": {"node_type_id": "m6id.xlarge"}},
                "size": {"num_workers": 1},
            }
        },
        "timeout_seconds": 3600,
        **getattr(request, "param", {}),
    }


@pytest.fixture
def production_location(
    s3_lake, workspace, run_config, tmp_path, monkeypatch
) -> ReconstructableRepository:
    """The code location as the production container loads it: its environment, the launcher's
    deployment file, and `phone_compliance.definitions` imported afresh under them."""
    deployment = tmp_path / "databricks.yaml"
    deployment.write_text(
        yaml.safe_dump({"run_config": run_config, "poll_interval_sec": 0.5, "verbose_logs": False})
    )
    settings = s3_lake.settings
    for name, value in {
        "PHONE_COMPLIANCE_ENV": "production",
        "PHONE_COMPLIANCE_LANDING": settings.landing,
        "PHONE_COMPLIANCE_WAREHOUSE": settings.warehouse,
        "PHONE_COMPLIANCE_SHUFFLE_PARTITIONS": "2",
        "PHONE_COMPLIANCE_DATABRICKS_CONFIG": str(deployment),
        "DATABRICKS_HOST": workspace.url,
        "DATABRICKS_TOKEN": workspace.token,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delitem(sys.modules, "phone_compliance.definitions", raising=False)
    monkeypatch.delattr(phone_compliance, "definitions", raising=False)
    return ReconstructableRepository.for_module(
        "phone_compliance.definitions", "defs", working_directory=str(PROJECT_ROOT)
    )


def test_heavy_steps_run_on_databricks_and_the_run_lives_in_postgres(
    s3_spark, s3_lake, workspace, production_location, production_instance
):
    staging = s3_lake.staging
    f.write(staging, schema.ENROLLMENT, "2020-01-05", [f.enrollment(A, PHONE, "2020-01-03")])
    f.write(
        staging,
        schema.SNAPSHOT,
        "2020-02-01",
        [
            f.snapshot(A, PHONE, "Y", "2020-01-20"),
            f.snapshot(B, PHONE),
        ],
    )
    s3_lake.upload()

    job = production_location.get_reconstructable_job("refresh_decisions")
    result = dg.execute_job(job, instance=production_instance)
    logs = "\n".join(run.log.read_text(errors="replace")[-3000:] for run in workspace.runs.values())
    assert result.success, logs
    assert set(failed_checks(result)) == set()

    # Each heavy step was one Databricks run of the launcher's main file, on a new job cluster
    # with the project's libraries pinned, and succeeded there.
    runs = list(workspace.runs.values())
    steps = {Path(run.task["spark_python_task"]["parameters"][0]).parent.name for run in runs}
    assert steps == HEAVY_STEPS and len(runs) == len(HEAVY_STEPS)
    assert all(run.result_state == "SUCCESS" for run in runs)
    libraries = {lib["pypi"]["package"].split("==")[0] for lib in runs[0].task["libraries"]}
    assert {"dagster", "dagster-databricks", "isal", "dagster-aws"} <= libraries
    assert runs[0].task["new_cluster"]["spark_version"] == "17.3.x-scala2.13"

    # They ran on one cluster environment (same libraries, installed once), on its own Python:
    # the runtime layer and the libraries, and nothing of the code location's that the list leaves
    # out (the project itself arrived as the launcher's code.zip).
    environment = runs[0].environment
    assert all(run.environment is environment for run in runs)
    assert all(run.process.args[0] == str(environment.python) for run in runs)
    installed = environment.installed()
    assert {"pyspark", "delta-spark", "dagster-databricks", "isal"} <= set(installed)
    assert not {"dagster-postgres", "dagster-webserver", "phone-compliance"} & set(installed)

    # The steps' events came back into the production instance's PostgreSQL storage.
    assert isinstance(production_instance.run_storage, PostgresRunStorage)
    assert isinstance(production_instance.event_log_storage, PostgresEventLogStorage)
    materialization = production_instance.get_latest_materialization_event(PHONE_CONSENT_KEY)
    assert materialization.run_id == result.run_id

    # Gold, written by the remote step into S3, read back here; Bronze hashed SSNs with the key
    # of the secret scope (the driver's environment had no other).
    spark, settings = s3_spark, s3_lake.settings
    gold = {r["account_number"]: r for r in table(spark, settings, "gold/phone_consent").collect()}
    assert set(gold) == {A, B} and gold[A]["can_send_sms"] is True
    ssn_hash = table(spark, settings, "bronze/enrollment").collect()[0]["ssn_hash"]
    key = hashlib.sha256(SSN_KEY.encode()).digest()
    assert ssn_hash == hashlib.sha256(key + b"078051120").hexdigest()


@pytest.mark.parametrize("run_config", [{"install_default_libraries": False}], indirect=True)
def test_a_library_the_cluster_lacks_fails_the_step_with_its_import_error(
    s3_lake, workspace, production_location, production_instance
):
    """remote.py leaves dagster-databricks to the launcher, which adds it unless told not to.
    Told not to, the cluster lacks it. The step then fails on the driver, as it would on
    Databricks, and the ImportError reaches the Dagster run's failure."""
    enrollment = [f.enrollment(A, PHONE, "2020-01-03")]
    f.write(s3_lake.staging, schema.ENROLLMENT, "2020-01-05", enrollment)
    s3_lake.upload()

    job = production_location.get_reconstructable_job("refresh_decisions")
    result = dg.execute_job(job, instance=production_instance)

    assert not result.success
    (run,) = workspace.runs.values()  # Bronze; nothing after it started
    libraries = {lib["pypi"]["package"].split("==")[0] for lib in run.task["libraries"]}
    assert "dagster-databricks" not in libraries
    assert "dagster-databricks" not in run.environment.installed()
    assert run.result_state == "FAILED"
    (failure,) = result.get_step_failure_events()
    assert failure.step_key == "bronze_ingest"
    error = failure.step_failure_data.error
    messages = []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    assert "No module named 'dagster_databricks'" in "\n".join(messages)

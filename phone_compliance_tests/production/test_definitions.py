"""The code location of each world: which sensors, jobs and resources `PHONE_COMPLIANCE_ENV`
selects, and that Silver, Gold and the decision index follow Bronze by declarative automation."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest
import yaml

from phone_compliance.definitions import build_defs
from phone_compliance.pipeline.assets import (
    CHANGE_KEY,
    ENROLLMENT_KEY,
    LEDGER_KEY,
    PAIR_STATE_KEY,
    PHONE_CONSENT_KEY,
    REJECTS_KEY,
    SNAPSHOT_KEY,
)
from phone_compliance.pipeline.remote import (
    CONFIG_ENV,
    ON_CLUSTER_ENV,
    REMOTE_EXECUTION,
    databricks_step_launcher,
    deployment_file,
    launcher_config,
)
from phone_compliance.pipeline.serving import DECISION_INDEX_KEY
from phone_compliance_tests.conftest import lake_settings

BRONZE_KEYS = [ENROLLMENT_KEY, SNAPSHOT_KEY, CHANGE_KEY, REJECTS_KEY, LEDGER_KEY]


@pytest.fixture
def production(tmp_path):
    return replace(
        lake_settings(tmp_path),
        env="production",
        landing="s3://landing/",
        warehouse="s3://lakehouse/warehouse",
    )


def _sensors(defs: dg.Definitions) -> dict[str, dg.SensorDefinition]:
    return {s.name: s for s in defs.get_repository_def().sensor_defs}


def test_local_world_is_unchanged(tmp_path):
    defs = build_defs(lake_settings(tmp_path))
    sensors = _sensors(defs)
    assert sensors["local_landing_sensor"].job_name == "refresh_decisions"
    assert sensors["local_landing_sensor"].default_status == dg.DefaultSensorStatus.STOPPED
    assert sensors["decisions_follow_bronze"].default_status == dg.DefaultSensorStatus.STOPPED
    assert "s3" not in defs.resources
    # Remote execution is nothing: every step runs in the run's own process, on local Spark.
    assert defs.resources[REMOTE_EXECUTION].resource_fn(None) is None


def test_production_world_watches_s3_and_follows_bronze_automatically(production):
    defs = build_defs(production)
    sensors = _sensors(defs)
    assert set(sensors) == {"s3_landing_sensor", "decisions_follow_bronze"}
    assert sensors["s3_landing_sensor"].job_name == "ingest_landing"
    assert sensors["decisions_follow_bronze"].default_status == dg.DefaultSensorStatus.RUNNING
    assert "s3" in defs.resources
    ingest = defs.resolve_job_def("ingest_landing")
    assert ingest.asset_layer.executable_asset_keys == set(BRONZE_KEYS)
    assert "bronze__file_ledger_r1_2_rows_conserved_per_file" in ingest.graph.node_dict  # checks

    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert first.total_requested == 0  # Bronze never ran: nothing to follow
        for key in BRONZE_KEYS:
            instance.report_runless_asset_event(dg.AssetMaterialization(key))
        after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        requested = {
            key
            for key in (PAIR_STATE_KEY, PHONE_CONSENT_KEY, DECISION_INDEX_KEY)
            if after.get_requested_partitions(key)
        }
        assert requested == {PAIR_STATE_KEY, PHONE_CONSENT_KEY, DECISION_INDEX_KEY}
        assert not any(after.get_requested_partitions(key) for key in BRONZE_KEYS)


def test_the_launcher_configuration_completes_the_deployment_file(production, monkeypatch):
    """The deployment file names the workspace's cluster; the code adds where data lives, the
    project's libraries, the secret scope and the package to ship, and the result is a valid
    configuration of dagster-databricks' launcher."""
    deployment = {
        "step_launcher": {
            "run_config": {
                "cluster": {
                    "new": {
                        "spark_version": "17.3.x-scala2.13",
                        "nodes": {"node_types": {"node_type_id": "m6id.xlarge"}},
                        "size": {"autoscale": {"min_workers": 1, "max_workers": 8}},
                    }
                },
                "libraries": [{"pypi": {"package": "isal==1.7.0"}}],
            },
            "env_variables": {"EXTRA": "1"},
        }
    }
    config = launcher_config(production, deployment)
    assert config["env_variables"] == {
        "PHONE_COMPLIANCE_ENV": "production",
        "PHONE_COMPLIANCE_LANDING": "s3://landing/",
        "PHONE_COMPLIANCE_WAREHOUSE": "s3://lakehouse/warehouse",
        "PHONE_COMPLIANCE_SHUFFLE_PARTITIONS": "2",
        ON_CLUSTER_ENV: "databricks",
        "EXTRA": "1",
    }
    packages = [lib["pypi"]["package"] for lib in config["run_config"]["libraries"]]
    assert "isal==1.7.0" in packages and not any(p.startswith("isal==") for p in packages[1:])
    assert not any(p.startswith(("pyspark", "delta-spark")) for p in packages)
    assert config["secrets_to_env_variables"] == [
        {
            "name": "PHONE_COMPLIANCE_SSN_HASH_KEY",
            "scope": "phone-compliance",
            "key": "ssn-hash-key",
        }
    ]
    assert config["databricks_token"] == {"env": "DATABRICKS_TOKEN"}  # never in a file
    shipped = Path(config["local_dagster_job_package_path"])
    assert [p.name for p in shipped.iterdir()] == ["phone_compliance"]

    monkeypatch.setenv("DATABRICKS_HOST", "https://example.cloud.databricks.com")
    monkeypatch.setenv("DATABRICKS_TOKEN", "not-a-token")

    @dg.asset(required_resource_keys={REMOTE_EXECUTION})
    def heavy() -> None: ...

    job = dg.define_asset_job("heavy").resolve(
        asset_graph=dg.Definitions(
            assets=[heavy],
            resources={REMOTE_EXECUTION: databricks_step_launcher(production, deployment)},
        )
        .get_repository_def()
        .asset_graph
    )
    assert dg.validate_run_config(job) is not None


def test_a_failed_blocking_check_on_bronze_stops_what_follows(production):
    defs = build_defs(production)
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        for key in BRONZE_KEYS:
            instance.report_runless_asset_event(dg.AssetMaterialization(key))
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=LEDGER_KEY,
                check_name="r1_2_rows_conserved_per_file",
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
            )
        )
        after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        assert after.total_requested == 0


DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _compose_environment(service: str) -> dict[str, str]:
    """A compose service's environment as the container gets it: `${X:-d}` is d, a required
    `${X:?...}` gets a stand-in value (the operator's env file sets it)."""
    compose = yaml.safe_load((DEPLOY / "docker" / "docker-compose.yaml").read_text())
    env = {}
    for name, value in compose["services"][service]["environment"].items():
        value = str(value)
        default = re.fullmatch(r"\$\{\w+:-(.*)\}", value)
        required = re.fullmatch(r"\$\{\w+:\?.*\}", value)
        env[name] = default[1] if default else f"stand-in-{name}" if required else value
    return env


def test_the_deployment_as_shipped_builds_a_valid_launcher(production, monkeypatch):
    """Production definitions from exactly what deploy/ ships: the image's step launcher file,
    filled from the code-location container's environment in docker-compose, configure the
    launcher validly (no DagsterInvariantViolationError at the first run)."""
    env = _compose_environment("code-location")
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text()
    shipped_at = env[CONFIG_ENV]
    assert f"{CONFIG_ENV}={shipped_at}" in dockerfile
    assert "deploy/dagster/step_launcher.yaml" in dockerfile
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(CONFIG_ENV, str(DEPLOY / "dagster" / Path(shipped_at).name))
    job = build_defs(production).resolve_job_def("refresh_decisions")
    assert dg.validate_run_config(job) is not None

    monkeypatch.delenv("DATABRICKS_CLUSTER_POLICY_ID")
    with pytest.raises(dg.DagsterInvariantViolationError, match="DATABRICKS_CLUSTER_POLICY_ID"):
        deployment_file(DEPLOY / "dagster" / "step_launcher.yaml", os.environ)

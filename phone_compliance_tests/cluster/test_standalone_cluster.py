"""The whole graph on a Spark standalone cluster: `phone-compliance run` in its own process, with
nothing but PHONE_COMPLIANCE_SPARK_MASTER pointing it at the cluster (and executors sized for
this machine), publishes the same Gold as a local run of the same landing (in the test's own
process), and the cluster's executors did the work."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from phone_compliance import schema
from phone_compliance.lakehouse.spark import executors_fetch_jars
from phone_compliance.settings import Settings
from phone_compliance_tests import files as f
from phone_compliance_tests.conftest import lake_settings
from phone_compliance_tests.files import PHONE, C
from phone_compliance_tests.harness import run_pipeline, table
from phone_compliance_tests.processes import LOOPBACK, start_group, stop_group

RUN_TIMEOUT = 1800  # seconds; a busy 2-core machine runs the driver and the cluster


def _seed(landing: Path) -> None:
    f.small_history(landing)
    consent = f.change(C, PHONE, "2020-02-06", consent="N", consent_date="2020-02-06")
    f.write(landing, schema.CHANGE, "2020-02-09", [consent])


def _run(tmp: Path, name: str, landing: Path, master: str, **extra: str) -> Settings:
    """`phone-compliance run` on `master`, as its own process (its own driver and Dagster home);
    the settings of the warehouse it wrote."""
    home, warehouse, out = tmp / f"{name}-home", tmp / f"{name}-warehouse", tmp / f"{name}.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONE_COMPLIANCE_")}
    env |= {
        "PHONE_COMPLIANCE_SPARK_MASTER": master,
        "PHONE_COMPLIANCE_SSN_HASH_KEY": "test-only-key",
        "PHONE_COMPLIANCE_DRIVER_MEMORY": "1g",
        "PHONE_COMPLIANCE_SHUFFLE_PARTITIONS": "2",
        "DAGSTER_HOME": str(home),
        "SPARK_LOCAL_IP": LOOPBACK,
        # The executors' Python workers (Spark ships Python rows to them): this interpreter.
        "PYSPARK_PYTHON": sys.executable,
        **extra,
    }
    command = [sys.executable, "-m", "phone_compliance.cli", "run"]
    command += ["--landing", str(landing), "--warehouse", str(warehouse)]
    driver = start_group(command, env, out)
    try:
        driver.wait(timeout=RUN_TIMEOUT)
    finally:
        stop_group(driver)  # the driver's JVM too, even when the run hangs
    if driver.returncode != 0:
        logs = "\n".join(p.read_text()[-4000:] for p in (home / "logs").glob("run-*.log"))
        pytest.fail(f"{name} run failed ({driver.returncode}):\n{out.read_text()}\n{logs}")
    return Settings(warehouse=str(warehouse))


@pytest.mark.slow
def test_the_graph_on_a_standalone_cluster_publishes_what_local_spark_does(
    standalone_cluster, tmp_path, request
):
    landing = tmp_path / "landing"
    _seed(landing)

    on_cluster = _run(
        tmp_path,
        "cluster",
        landing,
        standalone_cluster.master_url,
        PHONE_COMPLIANCE_SPARK_CONF="spark.executor.memory=700m",
    )

    # Each worker ran executors for the run, and they ran its tasks; no executor was started
    # with a driver-only option (the JIT directives' file is a path on the driver's machine).
    for work_dir in standalone_cluster.work_dirs:
        executor_logs = [log.read_text() for log in work_dir.glob("app-*/*/stderr")]
        assert executor_logs, f"no executor ran on {work_dir.name}"
        assert any("Finished task" in log for log in executor_logs), work_dir.name
        commands = [log.partition("\n")[0] for log in executor_logs]
        assert all(c.startswith("Spark Executor Command") for c in commands)
        assert not any("CompilerDirectivesFile" in c for c in commands)

    # The same files on local Spark, in this process (started only now: no idle JVM while the
    # cluster ran).
    spark = request.getfixturevalue("spark")
    on_local = lake_settings(tmp_path / "local").with_overrides(landing=str(landing))
    assert run_pipeline(on_local).success
    got = table(spark, on_cluster, "gold/phone_consent")
    want = table(spark, on_local, "gold/phone_consent")
    assert got.columns == want.columns == list(schema.names(schema.GOLD_DECISION))
    key = list(schema.PAIR_KEY)
    assert want.count() == 3
    assert got.orderBy(key).collect() == want.orderBy(key).collect()


def test_jars_are_shipped_to_executors_only_where_spark_jars_is_their_one_source():
    fetching = ("spark://10.0.0.5:7077", "k8s://https://api:443", "local-cluster[2,1,1024]")
    assert all(executors_fetch_jars(master) for master in fetching)
    # local: the driver's JVM runs the tasks; YARN: spark-submit hands YARN the jars itself.
    assert not any(executors_fetch_jars(master) for master in ("local", "local[*]", "yarn"))

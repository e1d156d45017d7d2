"""A broken code location fails CI, not a user: start the Dagster webserver on the project's
workspace and ask its GraphQL API (dagster-graphql's client) for the assets and checks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster_graphql import DagsterGraphQLClient

from phone_compliance_tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]

ASSETS_AND_CHECKS = """
query {
  assetNodes {
    assetKey { path }
    assetChecksOrError { ... on AssetChecks { checks { name } } }
  }
}
"""


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    port = free_port()
    home = tmp_path_factory.mktemp("dagster_home")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster_webserver",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            str(ROOT / "workspace.yaml"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = DagsterGraphQLClient("127.0.0.1", port_number=port)
    deadline = time.monotonic() + 180
    while True:
        try:
            client._execute("query { version }")
            break
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("the Dagster webserver did not come up")
            time.sleep(1)
    yield client
    proc.terminate()
    proc.wait(timeout=30)


def test_code_location_loads_with_every_asset_and_check(webserver):
    deadline = time.monotonic() + 120
    while True:
        nodes = webserver._execute(ASSETS_AND_CHECKS)["assetNodes"]
        if nodes or time.monotonic() > deadline:
            break
        time.sleep(1)
    assets = {"/".join(n["assetKey"]["path"]) for n in nodes}
    checks = {c["name"] for n in nodes for c in n["assetChecksOrError"].get("checks", [])}
    assert {
        "bronze/enrollment",
        "silver/pair_state",
        "gold/phone_consent",
        "serving/decision_index",
    } <= assets
    assert {
        "r1_2_rows_conserved_per_file",
        "r13_snapshot_not_shrunk",
        "r13_decision_flips_within_limit",
        "r12_index_agrees_with_gold",
    } <= checks

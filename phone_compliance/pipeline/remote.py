"""Where the heavy Spark steps run: the one seam between the asset graph and remote execution.

Bronze, Silver and Gold require the `remote_execution` resource. Locally it is nothing, and the
steps run in-process on local Spark. In production it is dagster-databricks' PySpark step
launcher: each of those steps runs, unchanged (same asset body, same Delta IO manager, same
tables), as a one-time run on a Databricks job cluster, while the checks, the decision index and
the sensors stay in the code location. Replacing the launcher by Dagster Pipes would change this
module and the Spark asset bodies, not the graph, the checks or the sensors (see the README).

The launcher's deployment configuration (cluster spec, libraries, secret scope) is a YAML file
named by `PHONE_COMPLIANCE_DATABRICKS_CONFIG`, in the shape of docs/production.md's `step_launcher`
block; what the code itself knows (where data lives, the project's libraries, the SSN hash key's
secret) is filled in here, so that file holds only what differs per workspace.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from importlib.metadata import requires, version
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from phone_compliance.ingest import parser
from phone_compliance.settings import Settings

REMOTE_EXECUTION = "remote_execution"
CONFIG_ENV = "PHONE_COMPLIANCE_DATABRICKS_CONFIG"
# Set on the cluster (through the launcher's env_variables): there the step is already remote.
ON_CLUSTER_ENV = "PHONE_COMPLIANCE_REMOTE_STEP"
SSN_SECRET = {
    "name": "PHONE_COMPLIANCE_SSN_HASH_KEY",
    "scope": "phone-compliance",
    "key": "ssn-hash-key",
}
# The Databricks runtime brings Spark and Delta; the launcher adds dagster, dagster-databricks,
# dagster-pyspark and databricks-sdk itself; the UI packages are not needed on a cluster.
_NOT_ON_CLUSTER = {
    "pyspark",
    "delta-spark",
    "dagster-webserver",
    "dagster-graphql",
    "uvicorn",
    "dagster-databricks",
    "dagster-postgres",
}


def on_cluster() -> bool:
    """True inside a step the launcher shipped to a cluster."""
    return bool(os.environ.get(ON_CLUSTER_ENV))


def in_process() -> dg.ResourceDefinition:
    """The `remote_execution` resource where steps run in this process, on its own Spark."""
    return dg.ResourceDefinition.none_resource(
        description="Steps run in this process, on this process's Spark."
    )


def databricks_step_launcher(
    settings: Settings, deployment: Mapping[str, Any] | None = None
) -> dg.ResourceDefinition:
    """dagster-databricks' PySpark step launcher, configured for this deployment.

    `deployment` is the per-workspace part (the YAML of `PHONE_COMPLIANCE_DATABRICKS_CONFIG` when
    not given); it is read when a run starts, so a code location without it still loads.
    """
    from dagster_databricks import databricks_pyspark_step_launcher

    def config_fn(_: Any) -> dict[str, Any]:
        return launcher_config(settings, deployment if deployment is not None else _deployment())

    return databricks_pyspark_step_launcher.configured(config_fn, config_schema={})


def launcher_config(settings: Settings, deployment: Mapping[str, Any]) -> dict[str, Any]:
    """The launcher's full configuration: the deployment's part, completed from the settings."""
    config = {k: v for k, v in deployment.items() if k != "step_launcher"}
    config = {**deployment.get("step_launcher", {}), **config}
    run_config = dict(config.get("run_config", {}))
    run_config["libraries"] = _libraries(run_config.get("libraries", []))
    env_variables = {**cluster_environment(settings), **config.get("env_variables", {})}
    return {
        "databricks_host": {"env": "DATABRICKS_HOST"},
        "databricks_token": {"env": "DATABRICKS_TOKEN"},
        "secrets_to_env_variables": [SSN_SECRET],
        **config,
        "run_config": run_config,
        "env_variables": env_variables,
        # Only the package: the image's project folder also holds its virtual environment.
        "local_dagster_job_package_path": str(staged_package()),
    }


def cluster_environment(settings: Settings) -> dict[str, str]:
    """What a step on the cluster must know about this deployment (no secrets: those come from
    the secret scope)."""
    env = {
        "PHONE_COMPLIANCE_ENV": settings.env,
        "PHONE_COMPLIANCE_LANDING": settings.landing,
        "PHONE_COMPLIANCE_WAREHOUSE": settings.warehouse,
        "PHONE_COMPLIANCE_SHUFFLE_PARTITIONS": str(settings.shuffle_partitions),
        ON_CLUSTER_ENV: "databricks",
    }
    if settings.s3_endpoint:
        env["PHONE_COMPLIANCE_S3_ENDPOINT"] = settings.s3_endpoint
    return env


def _libraries(configured: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The project's own dependencies, pinned to the versions of this environment, after the
    deployment's own list (which wins for a package it names, pinned or not)."""
    named = {
        canonicalize_name(Requirement(lib["pypi"]["package"]).name)
        for lib in configured
        if "pypi" in lib
    }
    pinned = []
    for requirement in map(Requirement, requires("phone-compliance") or []):
        name = canonicalize_name(requirement.name)
        if requirement.marker or name in _NOT_ON_CLUSTER or name in named:
            continue
        pinned.append({"pypi": {"package": f"{name}=={version(name)}"}})
    return [*configured, *pinned]


@functools.cache
def staged_package() -> Path:
    """A folder holding only the `phone_compliance` package (with the line parser's jar), which
    the launcher zips per step."""
    package = Path(__file__).resolve().parents[1]
    root = Path(tempfile.mkdtemp(prefix="phone-compliance-package-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    parser.jar()  # built with the package: the cluster needs no JDK compiler
    shutil.copytree(package, root / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_environment(text: str, environ: Mapping[str, str]) -> str:
    """`${NAME}` and `${NAME:-default}` replaced from `environ`; every unset name without a
    default is reported at once."""
    missing = sorted(
        {m[1] for m in _VARIABLE.finditer(text) if m[2] is None and not environ.get(m[1])}
    )
    if missing:
        raise dg.DagsterInvariantViolationError(
            f"the step launcher's settings need {', '.join(missing)} (Terraform outputs; see "
            "docs/production.md)"
        )
    return _VARIABLE.sub(lambda m: environ.get(m[1]) or (m[2] or ""), text)


def deployment_file(path: str | Path, environ: Mapping[str, str]) -> dict[str, Any]:
    """The launcher's per-workspace settings: the YAML file, its ${...} filled from `environ`."""
    return yaml.safe_load(expand_environment(Path(path).read_text(), environ)) or {}


def _deployment() -> dict[str, Any]:
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise dg.DagsterInvariantViolationError(
            f"production runs Spark steps on Databricks: set {CONFIG_ENV} to the step launcher's "
            "YAML (the image ships deploy/dagster/step_launcher.yaml; see docs/production.md)"
        )
    return deployment_file(path, os.environ)

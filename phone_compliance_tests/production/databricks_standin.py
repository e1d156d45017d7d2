"""A local stand-in for the Databricks workspace, so the real PySpark step launcher runs end to end
without one. This is the only mocked part of the production tests.

It serves, on 127.0.0.1, exactly the REST endpoints dagster-databricks 0.29's step launcher calls
(through databricks-sdk): DBFS create / add-block / close / read, and jobs runs/submit, runs/get,
runs/cancel. Anything else answers 404, so a launcher that starts calling something new fails the
test loudly. Requests must carry the workspace token.

A submitted run is the launcher's `spark_python_task` (its `databricks_step_main.py`) run in a
local subprocess, set up as a Databricks job cluster sets up a driver: DBFS is a local folder
mounted at `/dbfs`, `sc`, `spark` and `dbutils` (secret scopes only) are globals of the task, the
Spark session is the runtime's (its configuration, plus the submitted cluster's `spark_conf`), and
the environment is the cluster's own (the instance profile's credentials), not the test's.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

# What a driver inherits from the machine (not from whoever submitted the run).
_MACHINE_ENV = ("PATH", "HOME", "JAVA_HOME", "LANG", "LC_ALL", "TMPDIR")


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class SubmittedRun:
    """One runs/submit request and what became of it."""

    run_id: int
    request: dict[str, Any]
    life_cycle_state: str = "PENDING"
    result_state: str | None = None
    state_message: str = ""
    process: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def task(self) -> dict[str, Any]:
        return self.request["tasks"][0]


@dataclass
class DatabricksStandin:
    """The workspace: DBFS in `root`, runs in subprocesses, `secrets` as its secret scopes."""

    root: Path
    token: str
    secrets: dict[str, dict[str, str]]
    runtime_conf: dict[str, str]  # the runtime's Spark configuration (Delta, S3 access)
    cluster_env: dict[str, str]  # what the instance profile gives a driver (AWS credentials)
    runs: dict[int, SubmittedRun] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    _handles: dict[int, Path] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> str:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        (self.root / "dbfs").mkdir(parents=True, exist_ok=True)
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        for run in self.runs.values():
            if run.process and run.process.poll() is None:
                run.process.kill()
        self._server.shutdown()
        self._thread.join()

    # --- HTTP -------------------------------------------------------------------------------

    @Request.application
    def _app(self, request: Request) -> Response:
        self.calls.append(f"{request.method} {request.path}")
        try:
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                raise _ApiError(401, "UNAUTHENTICATED", "invalid access token")
            route = self._routes().get((request.method, request.path))
            if route is None:
                raise _ApiError(404, "ENDPOINT_NOT_FOUND", f"no API {request.path}")
            args = dict(request.args) if request.method == "GET" else request.get_json(force=True)
            body = route(args or {})
        except _ApiError as error:
            body = {"error_code": error.code, "message": error.message}
            return Response(json.dumps(body), error.status, mimetype="application/json")
        return Response(json.dumps(body), 200, mimetype="application/json")

    def _routes(self):
        return {
            ("POST", "/api/2.0/dbfs/create"): self._dbfs_create,
            ("POST", "/api/2.0/dbfs/add-block"): self._dbfs_add_block,
            ("POST", "/api/2.0/dbfs/close"): self._dbfs_close,
            ("GET", "/api/2.0/dbfs/read"): self._dbfs_read,
            ("POST", "/api/2.2/jobs/runs/submit"): self._runs_submit,
            ("GET", "/api/2.2/jobs/runs/get"): self._runs_get,
            ("POST", "/api/2.2/jobs/runs/cancel"): self._runs_cancel,
        }

    # --- DBFS -------------------------------------------------------------------------------

    def local_path(self, dbfs_path: str) -> Path:
        """Where a DBFS path of the REST API (`/x`, or `dbfs:/x`) lives on this machine."""
        relative = Path(dbfs_path.removeprefix("dbfs:").lstrip("/"))
        if ".." in relative.parts:
            raise _ApiError(400, "INVALID_PARAMETER_VALUE", f"bad path {dbfs_path}")
        return self.root / "dbfs" / relative

    def driver_path(self, path: str) -> Path:
        """A path as a driver sees it: DBFS through its `/dbfs` mount, or a `dbfs:/` URI."""
        if path.startswith("/dbfs/"):
            return self.local_path(path.removeprefix("/dbfs"))
        if path.startswith("dbfs:"):
            return self.local_path(path)
        return Path(path)

    def _dbfs_create(self, args):
        path = self.local_path(args["path"])
        if path.exists() and not args.get("overwrite"):
            raise _ApiError(400, "RESOURCE_ALREADY_EXISTS", f"{args['path']} exists")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        with self._lock:
            handle = next(self._ids)
            self._handles[handle] = path
        return {"handle": handle}

    def _dbfs_add_block(self, args):
        path = self._handle(args["handle"])
        with path.open("ab") as out:
            out.write(base64.b64decode(args["data"]))
        return {}

    def _dbfs_close(self, args):
        self._handle(args["handle"])
        del self._handles[int(args["handle"])]
        return {}

    def _handle(self, handle) -> Path:
        path = self._handles.get(int(handle))
        if path is None:
            raise _ApiError(400, "INVALID_PARAMETER_VALUE", f"no open handle {handle}")
        return path

    def _dbfs_read(self, args):
        path = self.local_path(args["path"])
        if not path.is_file():
            raise _ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"No file at {args['path']}")
        offset, length = int(args.get("offset", 0)), int(args.get("length", 1 << 20))
        with path.open("rb") as data:
            data.seek(offset)
            chunk = data.read(length)
        return {"bytes_read": len(chunk), "data": base64.b64encode(chunk).decode()}

    # --- Jobs -------------------------------------------------------------------------------

    def _runs_submit(self, args):
        tasks = args.get("tasks") or []
        if len(tasks) != 1 or "spark_python_task" not in tasks[0]:
            raise _ApiError(400, "INVALID_PARAMETER_VALUE", "one spark_python_task expected")
        if not (tasks[0].get("new_cluster") or tasks[0].get("existing_cluster_id")):
            raise _ApiError(400, "INVALID_PARAMETER_VALUE", "a task needs a cluster")
        with self._lock:
            run = SubmittedRun(run_id=next(self._ids), request=args)
            self.runs[run.run_id] = run
        threading.Thread(target=self._execute, args=(run,), daemon=True).start()
        return {"run_id": run.run_id}

    def _run(self, args) -> SubmittedRun:
        run = self.runs.get(int(args["run_id"]))
        if run is None:
            raise _ApiError(400, "INVALID_PARAMETER_VALUE", f"Run {args['run_id']} does not exist")
        return run

    def _runs_get(self, args):
        run = self._run(args)
        state = {"life_cycle_state": run.life_cycle_state, "state_message": run.state_message}
        if run.result_state:
            state["result_state"] = run.result_state
        return {
            "run_id": run.run_id,
            "run_name": run.request.get("run_name"),
            "run_page_url": f"{self.url}/#job/runs/{run.run_id}",
            "state": state,
            "tasks": [
                {
                    "task_key": run.task.get("task_key"),
                    "run_id": run.run_id,
                    "state": state,
                    "cluster_instance": {"cluster_id": f"standin-{run.run_id}"},
                }
            ],
        }

    def _runs_cancel(self, args):
        run = self._run(args)
        if run.process and run.process.poll() is None:
            run.process.kill()
        run.life_cycle_state, run.result_state = "TERMINATED", "CANCELED"
        return {}

    def _execute(self, run: SubmittedRun) -> None:
        task = run.task["spark_python_task"]
        cluster = run.task.get("new_cluster") or {}
        spec = {
            "python_file": str(self.driver_path(task["python_file"])),
            "parameters": [str(self.driver_path(p)) for p in task.get("parameters", [])],
            "spark_conf": {**self.runtime_conf, **cluster.get("spark_conf", {})},
            "secrets": self.secrets,
        }
        workdir = Path(tempfile.mkdtemp(prefix=f"driver-{run.run_id}-", dir=self.root))
        (workdir / "task.json").write_text(json.dumps(spec))
        env = {k: os.environ[k] for k in _MACHINE_ENV if k in os.environ}
        env.update(self.cluster_env, DATABRICKS_RUNTIME_VERSION="standin")
        run.log = workdir / "driver.log"
        with run.log.open("wb") as log:
            run.process = subprocess.Popen(
                [sys.executable, __file__, str(workdir / "task.json")],
                cwd=workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            run.life_cycle_state = "RUNNING"
            code = run.process.wait()
        if run.result_state == "CANCELED":
            return
        run.result_state = "SUCCESS" if code == 0 else "FAILED"
        if code != 0:
            run.state_message = run.log.read_text(errors="replace")[-2000:]
        run.life_cycle_state = "TERMINATED"


class _Secrets:
    """`dbutils.secrets` of a driver: read-only access to the workspace's scopes."""

    def __init__(self, scopes: dict[str, dict[str, str]]):
        self._scopes = scopes

    def get(self, scope: str, key: str) -> str:
        return self._scopes[scope][key]


def _driver(task_file: str) -> None:
    """The driver of one submitted run: what a job cluster gives a spark_python_task, then the
    task itself, as `__main__` with its parameters."""
    import runpy
    from types import SimpleNamespace

    from phone_compliance.lakehouse.spark import build_spark_session

    spec = json.loads(Path(task_file).read_text())
    spark = build_spark_session(spec["spark_conf"])
    dbutils = SimpleNamespace(secrets=_Secrets(spec["secrets"]))
    sys.argv = [spec["python_file"], *spec["parameters"]]
    try:
        runpy.run_path(
            spec["python_file"],
            init_globals={"spark": spark, "sc": spark.sparkContext, "dbutils": dbutils},
            run_name="__main__",
        )
    finally:
        spark.stop()


if __name__ == "__main__":
    _driver(sys.argv[1])

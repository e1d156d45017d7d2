"""A local stand-in for the Databricks workspace, so that the real PySpark step launcher runs end
to end without one.

What is mocked, because no Databricks workspace can be reached from here: the workspace itself.
That covers its REST API and the job clusters it would start. The stand-in serves, on
127.0.0.1, exactly the endpoints dagster-databricks 0.29's step launcher calls (through
databricks-sdk): DBFS create / add-block / close / read, and jobs runs/submit, runs/get,
runs/cancel. Anything else answers 404, so a launcher that starts calling something new fails the
test loudly. Requests must carry the workspace token. A "job cluster" is one driver subprocess on
this machine. It has no workers (Spark runs `local[2]`) and runs this machine's Python
(DBR 17.3 has Python 3.12).

What is real:
- The launcher side: dagster-databricks' step launcher and databricks-sdk, speaking HTTP. They
  upload what they always upload: the launcher's `databricks_step_main.py`, the pickled step and
  its pickled config, and the `phone_compliance` package zipped as `code.zip`, which the main
  file unzips onto `sys.path`. No wheel and no requirements file is uploaded; the cluster gets
  every other Python package from the run's `libraries`.
- The cluster's Python environment. Each cluster gets a fresh virtual environment of this
  machine's Python, built as a cluster is built (`Runtime`). First the runtime layer, exactly
  pyspark and delta-spark at this environment's versions, because Databricks Runtime brings
  Spark and Delta and the launcher leaves them out of `libraries`. Then every `pypi` and `whl`
  library of the submitted run, installed with uv; a `jar` library goes onto the driver's
  classpath. A package that is not on the list is not on the driver, so the step fails with its
  ImportError as it would on Databricks. The runtime's JVM side comes from `runtime_conf`: Delta
  and hadoop-aws through `spark.jars.packages`.
- The driver is set up the way a Databricks job cluster sets one up. DBFS is a local folder
  mounted at `/dbfs`. `sc`, `spark` and `dbutils` (secret scopes only) are globals of the task.
  The Spark session is the runtime's (its configuration, plus the submitted cluster's
  `spark_conf`). The environment is the cluster's own (the instance profile's credentials), not
  the test's, and the test's virtual environment is not on its PATH.
- The driver imports only from the cluster's own folders: its environment, the runtime's
  standard library, DBFS and the temporary folder. The step's code pointer names the code
  location's working directory, and dagster puts that folder on `sys.path`. A cluster does not
  have it, but this machine does. So `phone_compliance` comes from code.zip, jar included, and
  not from the repository.

Differences from a real cluster, on purpose:
- Only pyspark and delta-spark stand for the runtime. A real runtime also ships pandas,
  pyarrow, numpy and more, so a package missing from `libraries` that the runtime happens to
  bring fails here and would pass there. That errs on the strict side.
- The libraries' own dependencies are held to this environment's versions (a constraints file),
  where a cluster's pip would take the newest ones allowed. A package that the list itself names
  is left to the list.
- One environment is built per distinct library list and reused for the test session. A real
  cluster installs once per cluster, which is once per step run here, because each step asks
  for a new cluster.

This file is also the driver's script. The cluster's Python runs it without the test's packages,
so at module level it imports only the standard library.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import distributions, version
from pathlib import Path
from typing import Any

# What a driver inherits from the machine (not from whoever submitted the run).
_MACHINE_ENV = ("PATH", "HOME", "JAVA_HOME", "LANG", "LC_ALL", "TMPDIR")
# The library kinds the stand-in's clusters install (Databricks also takes egg, maven, cran,
# requirements files and a pypi `repo`; a run asking for one is refused, not run without it).
_LIBRARY_KINDS = {"pypi", "whl", "jar"}


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class LibraryInstallError(Exception):
    """A cluster's libraries could not be installed (the run ends as it does on Databricks)."""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _canonical(re.match(r"[A-Za-z0-9._-]+", requirement.strip())[0])


@dataclass(frozen=True)
class ClusterEnvironment:
    """The Python environment of a job cluster: the runtime layer plus the run's libraries."""

    path: Path
    requirements: tuple[str, ...]  # what `libraries` asked uv for (pypi specs, whl files)
    jars: tuple[str, ...]  # `jar` libraries, for the driver's classpath
    sources: dict[str, str]  # per layer, where uv found the packages: "offline" or "online"
    seconds: float

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def installed(self) -> dict[str, str]:
        """The distributions in the environment, by canonical name."""
        site = next(self.path.glob("lib/python*/site-packages"))
        return {_canonical(d.metadata["Name"]): d.version for d in distributions(path=[str(site)])}


@dataclass
class Runtime:
    """The Databricks runtime of the stand-in's job clusters, and the clusters' environments.

    Each environment is a new virtual environment of `python`. The runtime layer (`packages`) goes
    in first and the run's libraries go in after it, both with `uv pip install`. uv tries offline
    first (the local uv cache) and goes to PyPI only when the cache lacks something. Dependencies
    that the list does not name are held to `pins`. Environments are kept per distinct library
    list for the life of this object.
    """

    root: Path
    python: str  # the runtime's interpreter
    packages: tuple[str, ...]  # what the runtime brings
    pins: dict[str, str]  # canonical name -> version, for dependencies the list leaves open
    _built: dict[str, ClusterEnvironment] = field(default_factory=dict)
    _building: dict[str, threading.Lock] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def like_this_environment(cls, root: Path) -> Runtime:
        """A runtime of this interpreter's Python, bringing pyspark and delta-spark at this
        environment's versions; other packages are pinned to this environment's versions (except
        those installed from a URL or a folder, such as the project itself)."""
        pins = {
            _canonical(d.metadata["Name"]): d.version
            for d in distributions()
            if d.metadata["Name"] and d.read_text("direct_url.json") is None
        }
        packages = tuple(f"{name}=={version(name)}" for name in ("pyspark", "delta-spark"))
        return cls(root=root, python=sys._base_executable, packages=packages, pins=pins)

    def environment(
        self, libraries: list[dict[str, Any]], dbfs: Callable[[str], Path]
    ) -> ClusterEnvironment:
        """The environment of a cluster with these `libraries` (DBFS paths resolved by `dbfs`),
        built on first use; raises LibraryInstallError as a cluster would fail to start."""
        requirements, jars = [], []
        for library in libraries:
            if "pypi" in library:
                requirements.append(library["pypi"]["package"])
            elif "whl" in library:
                requirements.append(str(dbfs(library["whl"])))
            elif "jar" in library:
                jars.append(str(dbfs(library["jar"])))
        content = [
            hashlib.sha256(Path(r).read_bytes()).hexdigest() if r.endswith(".whl") else r
            for r in [*requirements, *jars]
        ]
        key = hashlib.sha256(json.dumps(content).encode()).hexdigest()[:16]
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            if key not in self._built:
                self._built[key] = self._build(key, tuple(requirements), tuple(jars))
            return self._built[key]

    def _build(
        self, key: str, requirements: tuple[str, ...], jars: tuple[str, ...]
    ) -> ClusterEnvironment:
        uv = shutil.which("uv")
        if uv is None:
            raise LibraryInstallError("the stand-in installs libraries with uv: not on PATH")
        started = time.monotonic()
        path = self.root / f"cluster-env-{key}"
        shutil.rmtree(path, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        made = subprocess.run(
            [uv, "venv", "--quiet", "--python", self.python, str(path)],
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            raise LibraryInstallError(f"uv venv failed: {made.stderr.strip()}")
        python = path / "bin" / "python"
        named = {_requirement_name(r) for r in requirements if not r.endswith(".whl")}
        sources = {
            "runtime": self._install(uv, python, self.packages, set(), path / "runtime.log"),
            "libraries": self._install(uv, python, requirements, named, path / "libraries.log"),
        }
        seconds = time.monotonic() - started
        return ClusterEnvironment(path, requirements, jars, sources, seconds)

    def _install(
        self, uv: str, python: Path, requirements: tuple[str, ...], named: set[str], log: Path
    ) -> str:
        """Install `requirements`, offline when the uv cache has everything; the source used."""
        if not requirements:
            return "offline"
        constraints = log.with_suffix(".constraints.txt")
        constraints.write_text(
            "".join(f"{n}=={v}\n" for n, v in sorted(self.pins.items()) if n not in named)
        )
        command = [uv, "pip", "install", "--python", str(python), "-c", str(constraints)]
        offline = subprocess.run(
            [*command, "--offline", *requirements], capture_output=True, text=True
        )
        log.write_text(f"$ uv pip install --offline ...\n{offline.stdout}{offline.stderr}")
        if offline.returncode == 0:
            return "offline"
        online = subprocess.run([*command, *requirements], capture_output=True, text=True)
        with log.open("a") as out:
            out.write(f"$ uv pip install ... (online)\n{online.stdout}{online.stderr}")
        if online.returncode == 0:
            return "online"
        raise LibraryInstallError(
            f"uv pip install {' '.join(requirements)}: {online.stderr.strip()[-1500:]}"
        )


@dataclass
class SubmittedRun:
    """One runs/submit request and what became of it."""

    run_id: int
    request: dict[str, Any]
    life_cycle_state: str = "PENDING"
    result_state: str | None = None
    state_message: str = ""
    environment: ClusterEnvironment | None = None
    process: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def task(self) -> dict[str, Any]:
        return self.request["tasks"][0]

    def end(self, life_cycle_state: str, result_state: str, message: str = "") -> None:
        self.state_message, self.result_state = message, result_state
        self.life_cycle_state = life_cycle_state


@dataclass
class DatabricksStandin:
    """The workspace: DBFS in `root`, runs in subprocesses on clusters of `runtime`, `secrets`
    as its secret scopes."""

    root: Path
    token: str
    secrets: dict[str, dict[str, str]]
    runtime: Runtime
    runtime_conf: dict[str, str]  # the runtime's Spark configuration (Delta, S3 access)
    cluster_env: dict[str, str]  # what the instance profile gives a driver (AWS credentials)
    runs: dict[int, SubmittedRun] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    _handles: dict[int, Path] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> str:
        # werkzeug here, not at the top: a driver runs this file without it.
        from werkzeug.serving import make_server
        from werkzeug.wrappers import Request, Response

        @Request.application
        def app(request: Request) -> Response:
            status, body = self._respond(request)
            return Response(json.dumps(body), status, mimetype="application/json")

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        (self.root / "dbfs").mkdir(parents=True, exist_ok=True)
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
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

    def _respond(self, request) -> tuple[int, dict[str, Any]]:
        self.calls.append(f"{request.method} {request.path}")
        try:
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                raise _ApiError(401, "UNAUTHENTICATED", "invalid access token")
            route = self._routes().get((request.method, request.path))
            if route is None:
                raise _ApiError(404, "ENDPOINT_NOT_FOUND", f"no API {request.path}")
            args = dict(request.args) if request.method == "GET" else request.get_json(force=True)
            return 200, route(args or {})
        except _ApiError as error:
            return error.status, {"error_code": error.code, "message": error.message}

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
        for library in tasks[0].get("libraries", []):
            if set(library) - _LIBRARY_KINDS or "repo" in library.get("pypi", {}):
                raise _ApiError(
                    400, "INVALID_PARAMETER_VALUE", f"the stand-in cannot install {library}"
                )
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
        if run.life_cycle_state in ("TERMINATED", "INTERNAL_ERROR"):
            return {}  # as on Databricks: an ended run keeps its result
        if run.process and run.process.poll() is None:
            run.process.kill()
        run.end("TERMINATED", "CANCELED")
        return {}

    def _execute(self, run: SubmittedRun) -> None:
        """Start the run's cluster (its environment), then its driver; any error of the stand-in
        itself ends the run too, rather than leaving it pending until the launcher times out."""
        try:
            run.state_message = "Installing libraries"
            run.environment = self.runtime.environment(
                run.task.get("libraries", []), self.driver_path
            )
        except LibraryInstallError as error:
            run.end("INTERNAL_ERROR", "FAILED", f"Library installation failed: {error}")
            return
        except Exception:
            run.end("INTERNAL_ERROR", "FAILED", f"stand-in error:\n{traceback.format_exc()}")
            return
        if run.result_state == "CANCELED":
            return
        try:
            code = self._drive(run)
        except Exception:
            run.end("INTERNAL_ERROR", "FAILED", f"stand-in error:\n{traceback.format_exc()}")
            return
        if run.result_state == "CANCELED":
            return
        if code == 0:
            run.end("TERMINATED", "SUCCESS")
        else:
            run.end("TERMINATED", "FAILED", run.log.read_text(errors="replace")[-2000:])

    def _drive(self, run: SubmittedRun) -> int:
        """Run the task's driver on the run's cluster environment; its exit code."""
        task = run.task["spark_python_task"]
        cluster = run.task.get("new_cluster") or {}
        environment = run.environment
        spark_conf = {**self.runtime_conf, **cluster.get("spark_conf", {})}
        if environment.jars:
            jars = [spark_conf.get("spark.jars", ""), *environment.jars]
            spark_conf["spark.jars"] = ",".join(filter(None, jars))
        spec = {
            "python_file": str(self.driver_path(task["python_file"])),
            "parameters": [str(self.driver_path(p)) for p in task.get("parameters", [])],
            "spark_conf": spark_conf,
            "secrets": self.secrets,
            "cluster_root": str(self.root),
        }
        workdir = Path(tempfile.mkdtemp(prefix=f"driver-{run.run_id}-", dir=self.root))
        (workdir / "task.json").write_text(json.dumps(spec))
        env = {k: os.environ[k] for k in _MACHINE_ENV if k in os.environ}
        # The cluster's Python first on PATH, and no other virtual environment (the test's).
        path = [p for p in env.get("PATH", "").split(os.pathsep) if p and not _venv_bin(p)]
        env["PATH"] = os.pathsep.join([str(environment.python.parent), *path])
        env.update(
            self.cluster_env,
            DATABRICKS_RUNTIME_VERSION="standin",
            PYSPARK_PYTHON=str(environment.python),
        )
        run.log = workdir / "driver.log"
        with run.log.open("wb") as log:
            # -I: nothing from the caller's Python settings, nor this folder, on sys.path.
            run.process = subprocess.Popen(
                [str(environment.python), "-I", __file__, str(workdir / "task.json")],
                cwd=workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            run.life_cycle_state, run.state_message = "RUNNING", ""
            return run.process.wait()


def _venv_bin(folder: str) -> bool:
    return (Path(folder).parent / "pyvenv.cfg").exists()


class _Elsewhere:
    """The finder of a folder the cluster does not have: it finds nothing."""

    def find_spec(self, fullname, target=None):
        return None


def _import_only_from(roots: list[str]) -> None:
    """Let the driver import only from the cluster's own folders. The step's code pointer carries
    the code location's working directory, and dagster puts it on `sys.path` when it loads the
    definitions. A real cluster has no such folder, so `phone_compliance` comes from the
    launcher's code.zip. This machine has that folder, and without this hook the driver would
    import the project from the repository."""
    roots = [os.path.realpath(root) for root in roots]

    def hook(entry: str):
        real = os.path.realpath(entry or os.getcwd())
        if any(real == root or real.startswith(root + os.sep) for root in roots):
            raise ImportError  # the cluster's own: left to the usual finders
        return _Elsewhere()

    sys.path_hooks.insert(0, hook)
    sys.path_importer_cache.clear()


class _Secrets:
    """`dbutils.secrets` of a driver: read-only access to the workspace's scopes."""

    def __init__(self, scopes: dict[str, dict[str, str]]):
        self._scopes = scopes

    def get(self, scope: str, key: str) -> str:
        return self._scopes[scope][key]


def _driver(task_file: str) -> None:
    """The driver of one submitted run: what a job cluster gives a spark_python_task (the
    runtime's Spark session, `sc`, `dbutils`), then the task itself, as `__main__` with its
    parameters. Only the runtime's packages are imported here."""
    import runpy
    from types import SimpleNamespace

    from pyspark.sql import SparkSession

    spec = json.loads(Path(task_file).read_text())
    # The cluster's folders: its Python (the environment, the runtime's standard library), its
    # DBFS and working folders, its temporary folder (where the main file unzips code.zip).
    _import_only_from([sys.prefix, sys.base_prefix, spec["cluster_root"], tempfile.gettempdir()])
    builder = SparkSession.builder
    for key, value in spec["spark_conf"].items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
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

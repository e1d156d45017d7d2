"""The one Spark session factory: Dagster's resource and the tests both build sessions here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import pyspark
from pyspark.sql import SparkSession

from phone_compliance.settings import Settings

REQUIRED_JAVA = 17

# What HotSpot's C2 compiler leaves alone (the file says why).
JIT_DIRECTIVES = Path(__file__).with_name("jit_directives.json")


class JavaNotFound(RuntimeError):
    """Spark cannot start: Java is missing or the wrong version."""


def jdk_tool(name: str) -> str | None:
    """The path of a JDK program (`java`, `javac`): JAVA_HOME's, else PATH's; None if absent."""
    java_home = os.environ.get("JAVA_HOME")
    tool = str(Path(java_home) / "bin" / name) if java_home else shutil.which(name)
    return tool if tool and Path(tool).exists() else None


def require_java() -> None:
    """Stop with a clear message unless `java` (JAVA_HOME or PATH) is Java 17 or newer."""
    java_home = os.environ.get("JAVA_HOME")
    java = jdk_tool("java")
    if not java:
        raise JavaNotFound(
            f"Spark needs Java {REQUIRED_JAVA}: found no `java` "
            f"(JAVA_HOME={java_home!r}, PATH has none). Install a JDK {REQUIRED_JAVA}, "
            "e.g. `apt-get install openjdk-17-jdk-headless`."
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < REQUIRED_JAVA:
        raise JavaNotFound(
            f"Spark needs Java {REQUIRED_JAVA}: found {java} reporting "
            f"{out.splitlines()[0] if out else 'nothing'!r}. "
            f"Point JAVA_HOME at a JDK {REQUIRED_JAVA}."
        )


def hadoop_version() -> str:
    """The Hadoop version bundled with pyspark, so hadoop-aws matches it exactly."""
    jars = Path(pyspark.__file__).parent / "jars"
    found = sorted(jars.glob("hadoop-client-api-*.jar"))
    if not found:
        raise RuntimeError(f"no hadoop-client-api jar under {jars}")
    return found[0].name.removeprefix("hadoop-client-api-").removesuffix(".jar")


def jar_packages() -> list[str]:
    """Maven coordinates Spark fetches on first use (cached in ~/.ivy2.5.2, outside the repo)."""
    scala = "2.13"
    return [
        f"io.delta:delta-spark_{scala}:{version('delta-spark')}",
        f"org.apache.hadoop:hadoop-aws:{hadoop_version()}",
    ]


def spark_config(
    settings: Settings, *, jars: Sequence[str | Path] = (), ui: bool = True
) -> dict[str, str]:
    """The Spark configuration of one deployment: Delta, sizes for this machine, s3a, `jars`
    (the project's own, e.g. Bronze's reader), then the deployment's own confs."""
    conf = {
        "spark.master": settings.spark_master,
        "spark.app.name": "phone-compliance",
        "spark.jars.packages": ",".join(jar_packages()),
        "spark.jars": ",".join(map(str, jars)),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.driver.memory": settings.driver_memory,
        # The driver's JVM only (on a cluster, executors start without them): an executor reads
        # -XX:CompilerDirectivesFile when its JVM starts, before it could fetch a file shipped
        # with spark.files, and the directives were measured for one JVM planning and running
        # everything on 2 cores.
        "spark.driver.extraJavaOptions": (
            f'-XX:+UnlockDiagnosticVMOptions -XX:CompilerDirectivesFile="{JIT_DIRECTIVES}"'
        ),
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": str(ui).lower(),
        "spark.ui.showConsoleProgress": "false",
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.adaptive.enabled": "true",
        # One local JVM: listing a batch's few hundred files in a Spark job costs more than
        # listing them in the driver.
        "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
        # A Bronze write task holds one file, hence one partition: open its writer directly
        # instead of sorting the rows by partition first.
        "spark.sql.maxConcurrentOutputFileWriters": "4",
        # Credentials come from the standard AWS provider chain, never from config files.
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider"
        ),
    }
    if settings.s3_endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = settings.s3_endpoint
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(
            settings.s3_endpoint.startswith("https")
        ).lower()
    conf.update(settings.spark_conf)
    return conf


def executors_fetch_jars(master: str) -> bool:
    """True for masters whose executors get the application's jars only from the driver, through
    `spark.jars`: standalone, Kubernetes, local-cluster. Not `local` (one JVM, the driver's) nor
    YARN (spark-submit hands YARN the jars itself, in `spark.yarn.dist.jars`)."""
    return master.startswith(("spark://", "k8s://", "local-cluster["))


def ship_packages(session: SparkSession) -> None:
    """Serve a cluster's executors every jar spark-submit put on the driver's class path.

    spark-submit resolves `spark.jars.packages` and merges the jars into `spark.jars`, but the
    builder's own `spark.jars` (the project's jars) is applied after it and wins: left alone,
    executors get the parser but neither Delta nor hadoop-aws, and Delta's write tasks fail to
    deserialize (a ClassCastException on `WriteJobDescription.statsTrackers`, Java's way of
    reporting a class it could not load). The resolved list exists only once spark-submit has
    run, so no conf can name it; spark-submit records it in `spark.repl.local.jars` (for the
    shell), and jars added to the running context are shipped to every executor.
    """
    context = session.sparkContext
    served = {
        uri.rsplit("/", 1)[-1] for uri in context._jsc.sc().listJars().mkString(",").split(",")
    }
    for jar in context.getConf().get("spark.repl.local.jars", "").split(","):
        if jar and jar.rsplit("/", 1)[-1] not in served:
            context._jsc.addJar(jar)


def build_spark_session(conf: dict[str, str]) -> SparkSession:
    """A SparkSession for `conf` (reusing the running one), after checking Java; on a cluster,
    the executors get the same jars as the driver."""
    require_java()
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    if "spark.jars.packages" in conf and executors_fetch_jars(session.sparkContext.master):
        ship_packages(session)
    return session


@contextmanager
def session_conf(spark, conf: dict[str, str]) -> Iterator[None]:
    """Set session confs for the duration of a block (planning and execution), then restore."""
    before = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)

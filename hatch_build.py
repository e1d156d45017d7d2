"""Build hook: compile Bronze's reader (phone_compliance/ingest/java) into the package's jar.

Run by hatchling for every wheel and editable install (`uv sync`), so loading the code compiles
nothing. It compiles against the Spark 4.0 API of the pyspark in the build environment, for Java
17, with every lint warning an error; the jar's name carries no Spark version, and it runs on any
Spark 4.0.x (Databricks Runtime 17.x included).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCES = Path("phone_compliance/ingest/java")
JAR = Path("phone_compliance/ingest/line-parser.jar")
# The jars the sources compile against, by artifact name (any patch version).
API_JARS = (
    "spark-sql_2.13",
    "spark-sql-api_2.13",
    "spark-catalyst_2.13",
    "spark-core_2.13",
    "spark-unsafe_2.13",
    "spark-common-utils_2.13",
    "hadoop-client-api",
    "scala-library",
    "jackson-databind",
    "jackson-core",
    "jackson-annotations",
    "kryo-shaded",
)


def _javac() -> str:
    java_home = os.environ.get("JAVA_HOME")
    javac = str(Path(java_home) / "bin" / "javac") if java_home else shutil.which("javac")
    if not javac or not Path(javac).exists():
        raise RuntimeError(
            "building phone-compliance compiles Bronze's line parser and needs `javac` from a "
            f"JDK 17 (JAVA_HOME={java_home!r}); e.g. `apt-get install openjdk-17-jdk-headless`"
        )
    return javac


def _classpath() -> str:
    import pyspark  # a build requirement (pyproject.toml [build-system])

    jars = Path(pyspark.__file__).parent / "jars"
    found = []
    for artifact in API_JARS:
        matches = sorted(jars.glob(f"{artifact}-[0-9]*.jar"))
        if not matches:
            raise RuntimeError(f"no {artifact} jar under {jars}")
        found.append(str(matches[-1]))
    return os.pathsep.join(found)


def build_jar(root: Path) -> Path:
    """Compile the sources under `root` into `root/JAR`; returns its path."""
    root = root.resolve()
    sources = sorted(str(p) for p in (root / SOURCES).rglob("*.java"))
    target = root / JAR
    with tempfile.TemporaryDirectory() as work:
        classes = Path(work) / "classes"
        done = subprocess.run(
            [
                _javac(),
                "--release",
                "17",
                "-Xlint:all",
                "-Werror",
                "-cp",
                _classpath(),
                "-d",
                str(classes),
                *sources,
            ],
            capture_output=True,
            text=True,
            cwd=work,  # javac leaves an argument file in its folder when it fails
        )
        if done.returncode:
            raise RuntimeError(f"javac failed:\n{done.stdout}{done.stderr}")
        staged = Path(work) / JAR.name
        with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as out:
            for path in sorted(classes.rglob("*.class")):
                out.write(path, path.relative_to(classes).as_posix())
        # Renamed into place: a running JVM that has the old jar open keeps reading it whole.
        shutil.copy(staged, target.with_suffix(".jar.tmp"))
        os.replace(target.with_suffix(".jar.tmp"), target)
    return target


class LineParserBuildHook(BuildHookInterface):
    PLUGIN_NAME = "line-parser"

    def initialize(self, version: str, build_data: dict) -> None:
        build_jar(Path(self.root))
        # The jar is git-ignored: name it so the wheel carries it.
        build_data["artifacts"].append(JAR.as_posix())

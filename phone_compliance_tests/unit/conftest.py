"""The unit tests' Spark: the suite's one session, sized for frames of a few rows."""

from __future__ import annotations

import pytest

from phone_compliance.lakehouse.spark import session_conf

# A few rows per test: one shuffle partition, no adaptive re-planning between stages, and no
# whole-stage code generation (compiling each new plan costs more than running it on five rows).
# Restored when this package's tests are done, so the rest of the suite sees the usual session.
TINY_FRAMES = {
    "spark.sql.shuffle.partitions": "1",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.codegen.wholeStage": "false",
}


@pytest.fixture(scope="package")
def spark(spark):
    """The session-scoped `spark` of the suite, with `TINY_FRAMES` while the unit tests run."""
    with session_conf(spark, TINY_FRAMES):
        yield spark

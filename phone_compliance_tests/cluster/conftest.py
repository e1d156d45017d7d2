"""The cluster tests' fixture: a Spark standalone cluster on loopback (`standalone.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from phone_compliance_tests.cluster.standalone import Cluster, running_cluster


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory) -> Iterator[Cluster]:
    """A master and two workers on loopback (1 core, 1 GB each)."""
    with running_cluster(tmp_path_factory.mktemp("standalone")) as cluster:
        yield cluster

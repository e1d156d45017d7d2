"""R1.3 through the graph: a file delivered again under the same name. A broken re-delivery is
recorded as rejected, the last readable version of that name stays in force and Gold is published
as a from-scratch run over that version would publish it; a later readable version (the original
bytes again, or new content) replaces it as usual."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from phone_compliance import schema
from phone_compliance.settings import Settings
from phone_compliance_tests import files as f
from phone_compliance_tests.harness import decide_checked, failed_checks, run_pipeline, table

A, B, C, D = "1234567890123456", "6543210987654321", "1111222233334444", "5555666677778888"
PHONE, OTHER_PHONE = "2125550123", "3125550199"
# Two row rejects (R1.1) in every version of the file under test, at lines 2 and 3: a broken
# version's one whole-file reject cannot stand in for them by chance.
BAD_ROWS = ["not|enough|fields", "nor|these"]
WARNINGS = {"r1_reject_rate"}  # 2 rejected rows in a handful: above the 2% warning threshold
REDELIVERY_WARNING = "r1_3_rejected_redeliveries"


@dataclass(frozen=True)
class Case:
    """A file delivered good, then broken, then good again, among files of the other families."""

    family: schema.Family
    day: str
    good: list
    good_again: list | None  # None: the original bytes delivered again
    # A readable file of the same family arriving with the broken version: Bronze's rows of the
    # family are counted in that batch, the broken name's among them.
    alongside: tuple[str, list, int]


ENROLLMENT = Case(
    schema.ENROLLMENT,
    "2020-01-05",
    [*BAD_ROWS, f.enrollment(A, PHONE, "2020-01-03"), f.enrollment(D, OTHER_PHONE, "2020-01-04")],
    good_again=None,
    alongside=("2020-03-01", [f.enrollment(C, OTHER_PHONE, "2020-02-27")], 1),
)
SNAPSHOT = Case(
    schema.SNAPSHOT,
    "2020-02-01",
    [
        *BAD_ROWS,
        f.snapshot(A, PHONE, "Y", "2020-01-20"),
        f.snapshot(B, PHONE),
        f.snapshot(C, PHONE),
    ],
    # New content: one more pair (no published decision flips, so R13 stays quiet).
    good_again=[
        *BAD_ROWS,
        f.snapshot(A, PHONE, "Y", "2020-01-20"),
        f.snapshot(B, PHONE),
        f.snapshot(C, PHONE),
        f.snapshot(C, OTHER_PHONE),
    ],
    alongside=("2020-02-01", [f.snapshot(D, OTHER_PHONE)], 2),  # another part of the snapshot
)
OTHERS = {
    schema.ENROLLMENT.name: (
        schema.ENROLLMENT,
        "2020-01-05",
        [f.enrollment(A, PHONE, "2020-01-03")],
    ),
    schema.SNAPSHOT.name: (
        schema.SNAPSHOT,
        "2020-02-01",
        [f.snapshot(A, PHONE, "Y", "2020-01-20"), f.snapshot(B, PHONE), f.snapshot(C, PHONE)],
    ),
    schema.CHANGE.name: (
        schema.CHANGE,
        "2020-02-08",
        [f.change(B, PHONE, "2020-02-05", deleted="Y")],
    ),
}
BRONZE_TABLES = {
    schema.ENROLLMENT.name: "bronze/enrollment",
    schema.SNAPSHOT.name: "bronze/nonfin_snapshot",
}


def _deliver(path: Path, data: bytes, step: int) -> None:
    """Write a version with an explicit mtime of its own: the local fingerprint (size:mtime_ns)
    changes even when the bytes are those of an earlier version."""
    path.write_bytes(data)
    stamp = 1_600_000_000_000_000_000 + step * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


def _canonical(rows: Iterable[dict]) -> list[tuple]:
    """Gold rows in an order-free form that compares whole rows."""
    return sorted(tuple(sorted(row.items())) for row in rows)


def _gold(spark, lake: Settings) -> list[tuple]:
    return _canonical(r.asDict() for r in table(spark, lake, "gold/phone_consent").collect())


def _from_scratch(
    spark, lake: Settings, tmp_path: Path, name: str, replace: dict[Path, bytes] | None = None
) -> list[tuple]:
    """The Gold a from-scratch run publishes over a copy of the landing as it is now, with the
    files in `replace` holding the given bytes instead: the full build's pure transforms, checked
    against the reference model (the graph's Gold is held to that model end to end, e2e/)."""
    landing = tmp_path / name / "landing"
    shutil.copytree(lake.landing, landing)
    for path, data in (replace or {}).items():
        (landing / path.relative_to(lake.landing)).write_bytes(data)
    return _canonical(decide_checked(spark, landing).values())


def _assert_published(result: dg.ExecuteInProcessResult, warnings: set[str]) -> None:
    """The run succeeded, no blocking check failed, and exactly `warnings` did not pass."""
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert result.success
    assert [
        e.asset_check_key.name for e in failed if e.severity == dg.AssetCheckSeverity.ERROR
    ] == []
    assert set(failed_checks(result)) == warnings


def _versions(spark, lake: Settings, name: str) -> list:
    rows = table(spark, lake, "bronze/file_ledger").filter(f"source_file = '{name}'").collect()
    return sorted(rows, key=lambda r: r["ingested_at"])


def _bronze_rows(spark, lake: Settings, case: Case, name: str) -> int:
    return (
        table(spark, lake, BRONZE_TABLES[case.family.name])
        .filter(f"source_file = '{name}'")
        .count()
    )


def _rejects(spark, lake: Settings, name: str) -> list[tuple[str, int]]:
    rows = table(spark, lake, "bronze/rejects").filter(f"source_file = '{name}'").collect()
    return sorted((r["reason"], r["line_number"]) for r in rows)


def _warning(result: dg.ExecuteInProcessResult) -> list[dict]:
    found = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_check_key.name == REDELIVERY_WARNING
    ]
    assert len(found) == 1
    return found[0].metadata["rejected_redeliveries"].value


@pytest.mark.parametrize("case", [ENROLLMENT, SNAPSHOT], ids=["ENRLMT", "NON-FIN-BDL"])
def test_r1_3_a_broken_redelivery_never_freezes_gold(spark, lake, tmp_path, case: Case):
    landing = Path(lake.landing)
    for family, day, rows in OTHERS.values():
        if family != case.family:
            f.write(landing, family, day, rows)
    path = f.write(landing, case.family, case.day, case.good)
    name, good = path.name, path.read_bytes()
    _deliver(path, good, 1)
    row_rejects = [(schema.REJECT_FIELD_COUNT, 2), (schema.REJECT_FIELD_COUNT, 3)]

    # 1. The good version.
    _assert_published(run_pipeline(lake), WARNINGS)
    assert _versions(spark, lake, name)[0]["rows_accepted"] == len(case.good) - 2

    # 2. Broken (a truncated gzip), with a readable file of the same family: the broken version
    # is recorded as rejected and the good one stays in force, for Gold as for the checks.
    _deliver(path, good[:-10], 2)
    day, rows, seq = case.alongside
    f.write(landing, case.family, day, rows, seq=seq)
    broken = run_pipeline(lake)
    _assert_published(broken, WARNINGS | {REDELIVERY_WARNING})
    in_force = _from_scratch(spark, lake, tmp_path, "scratch-in-force", replace={path: good})
    assert _gold(spark, lake) == in_force
    first, second = _versions(spark, lake, name)
    assert (first["status"], second["status"]) == (schema.LEDGER_INGESTED, schema.LEDGER_REJECTED)
    assert second["reason"] == schema.FILE_BAD_GZIP
    assert (second["rows_read"], second["rows_accepted"], second["rows_rejected"]) == (0, 0, 0)
    assert first["rows_accepted"] == _bronze_rows(spark, lake, case, name) == len(case.good) - 2
    # The rejects of the version in force stay (R1.2 holds for it), with the broken version's
    # whole-file reject.
    assert _rejects(spark, lake, name) == sorted([*row_rejects, (schema.FILE_BAD_GZIP, 0)])
    assert [(w["source_file"], w["version"], w["reason"]) for w in _warning(broken)] == [
        (name, 2, schema.FILE_BAD_GZIP)
    ]

    # 3. Good again: a readable version replaces the one in force, as in a from-scratch run.
    if case.good_again is None:  # the original bytes, skipped before as already seen
        final, expected = good, in_force  # the landing is the one `in_force` was built from
    else:
        final = f.write(landing, case.family, case.day, case.good_again).read_bytes()
        expected = None
    _deliver(path, final, 3)
    again = run_pipeline(lake)
    _assert_published(again, WARNINGS)
    assert _gold(spark, lake) == (expected or _from_scratch(spark, lake, tmp_path, "scratch"))
    versions = _versions(spark, lake, name)
    assert [v["status"] for v in versions] == [
        schema.LEDGER_INGESTED,
        schema.LEDGER_REJECTED,
        schema.LEDGER_INGESTED,
    ]
    assert versions[-1]["rows_accepted"] == _bronze_rows(spark, lake, case, name)
    assert versions[-1]["rows_accepted"] == len(case.good_again or case.good) - 2
    assert _rejects(spark, lake, name) == row_rejects  # the broken version's reject went
    assert _warning(again) == []

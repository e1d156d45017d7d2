"""R12 through the graph: any split of the same files into runs, in any order, gives the Gold one
run over all of them gives, judged by the reference model, and the decision history (R14) one
run gives, whose as-of answers the service gives as the model does. Runs apply only what is new;
a run with nothing new commits nothing; a changed re-delivery rebuilds and says why."""

from __future__ import annotations

import gzip
import os
import random
import tempfile
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phone_compliance import schema
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.service import DecisionIndex
from phone_compliance_tests import files as f
from phone_compliance_tests import model
from phone_compliance_tests.conftest import lake_settings
from phone_compliance_tests.harness import failed_checks, history_in_memory, run_pipeline
from phone_compliance_tests.integration.test_model_agreement import (
    changes,
    enrollments,
    judge_dates,
    snapshots,
    write_history,
)

pytestmark = pytest.mark.slow
DERIVED = (
    "silver/pair_evidence",
    "silver/pair_state",
    "gold/phone_consent",
    "gold/decision_history",
)
BROKEN = gzip.compress(b"not|the|header\n")[:-4]  # a gzip cut short: the file is unreadable


def _changed(path: Path) -> bytes:
    """The file with its last row left out: the same name, other content."""
    lines = gzip.decompress(path.read_bytes()).decode().splitlines(keepends=True)
    return gzip.compress("".join(lines[:-1] if len(lines) > 1 else lines).encode(), mtime=0)


def _gold(lake) -> dict[tuple[str, str], dict]:
    uri = Locations(lake).table("gold", "phone_consent")
    if not Path(uri).exists():
        return {}
    rows = DeltaTable(uri).to_pyarrow_table().to_pylist()
    return {(r["account_number"], r["phone_number"]): r for r in rows}


def _history(lake) -> dict[tuple[str, str], list[dict]]:
    uri = Locations(lake).table("gold", "decision_history")
    out: dict[tuple[str, str], list[dict]] = {}
    if Path(uri).exists():
        for r in DeltaTable(uri).to_pyarrow_table().to_pylist():
            out.setdefault((r["account_number"], r["phone_number"]), []).append(r)
    return {pair: sorted(rows, key=lambda r: r["valid_from"]) for pair, rows in out.items()}


def _versions(lake) -> dict[str, int]:
    return {p: DeltaTable(Locations(lake).table_of(p.split("/"))).version() for p in DERIVED}


def _materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        e.asset_key.to_user_string(): {
            k: v.value for k, v in e.step_materialization_data.materialization.metadata.items()
        }
        for e in result.get_asset_materialization_events()
    }


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    snaps=snapshots,
    enrolls=enrollments,
    chgs=changes,
    runs=st.integers(1, 3),
    redelivery=st.sampled_from(["none", "changed", "broken"]),
    rejected=st.booleans(),
    rng=st.randoms(use_true_random=False),
)
def test_r12_any_split_of_the_files_into_runs_in_any_order_gives_the_gold_of_one_run(
    spark, snaps, enrolls, chgs, runs, redelivery, rejected, rng: random.Random
):
    with tempfile.TemporaryDirectory() as tmp:
        source, in_force = Path(tmp) / "source", Path(tmp) / "in_force"
        write_history(source, snaps, enrolls, chgs)
        files = sorted(source.glob("*/*"))
        # Each file in a random run: later file dates often arrive in earlier runs.
        plan: list[list[tuple[Path, bytes]]] = [[] for _ in range(runs)]
        for path in files:
            plan[rng.randrange(runs)].append((path, path.read_bytes()))
        if files and redelivery != "none":
            target = rng.choice(files)
            again = _changed(target) if redelivery == "changed" else BROKEN
            plan.append([(target, again)])  # after its first delivery, in a run of its own
        if rejected:
            bad = (
                source / schema.CHANGE.folder / schema.file_name(schema.CHANGE, "2020" * 4 + "1", 9)
            )
            plan[rng.randrange(len(plan))].append((bad, BROKEN))
        lake = lake_settings(Path(tmp))
        landing = Path(lake.landing)
        landing.mkdir()
        for n, delivered in enumerate(plan):
            for path, data in delivered:
                for root in (landing, in_force):
                    if root == in_force and data == BROKEN:
                        continue  # R1.3: a broken version leaves the last readable one in force
                    out = root / path.relative_to(source)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(data)
                    os.utime(out, (1_700_000_000 + n, 1_700_000_000 + n))
            result = run_pipeline(lake, accept_snapshot_shrink=True, accept_decision_flips=True)
            assert result.success, failed_checks(result)

        rows, snapshot_dates = model.rows_from_files(in_force)
        expected = model.decide(rows, snapshot_dates)
        got = _gold(lake)
        assert set(got) == set(expected)
        for pair, want in expected.items():
            assert {k: got[pair][k] for k in want} == want, pair

        # R14: the history the runs built is the one a single run builds, and the service's
        # as-of answers from it are the model's over the files dated by then.
        assert _history(lake) == history_in_memory(spark, str(in_force))
        index = DecisionIndex(Locations(lake).index_dir) if got else None
        for day in judge_dates({r.file_date for r in rows}):
            then = model.decide(
                [r for r in rows if r.file_date <= day], {s for s in snapshot_dates if s <= day}
            )
            for account, phone in got:
                answer = index.decide(account, phone, day)
                want = then.get((account, phone), {"reason": schema.NOT_FOUND})
                assert answer.reason == want["reason"], (account, phone, day)
                if answer.found:
                    assert answer.deleted_at == want["deleted_at"], (account, phone, day)
                    assert answer.has_sms_consent == want["has_sms_consent"]

        if files:  # nothing new: nothing is committed, and nothing after Bronze runs
            before = _versions(lake)
            again = run_pipeline(lake)
            assert again.success
            assert _versions(lake) == before
            assert set(_materializations(again)) == set()


def test_r12_a_new_file_is_applied_incrementally_and_a_changed_redelivery_rebuilds(spark, lake):
    """What Dagster shows: which files a run applied, how, and why."""
    a, b, phone = "1234567890123456", "6543210987654321", "2125550123"
    landing = Path(lake.landing)
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(a, phone), f.snapshot(b, phone)])
    first = _materializations(run_pipeline(lake))
    assert {first[p]["refresh"] for p in DERIVED} == {"full"}
    assert first["gold/phone_consent"]["refresh_reason"] == "first build"

    daily = f.write(landing, schema.CHANGE, "2020-02-09", [f.change(b, phone, "2020-02-05", "Y")])
    # One of two published decisions flips: R13 would hold it back unless accepted.
    second = _materializations(run_pipeline(lake, accept_decision_flips=True))
    gold = second["gold/phone_consent"]
    assert gold["refresh"] == "incremental"
    assert gold["files"] == [daily.name]
    assert gold["pairs_written"] == 1  # b's decision; a's unchanged row is not rewritten
    assert _gold(lake)[(b, "+12125550123")]["reason"] == schema.DELETED

    f.write(landing, schema.CHANGE, "2020-02-09", [f.change(b, phone, "2020-02-05", "N")])
    os.utime(daily, (1_800_000_000, 1_800_000_000))
    third = _materializations(run_pipeline(lake, accept_decision_flips=True))
    assert {third[p]["refresh"] for p in DERIVED} == {"full"}
    assert third["silver/pair_evidence"]["refresh_reason"].startswith("re-delivered with new")
    assert _gold(lake)[(b, "+12125550123")]["reason"] == schema.ALLOWED

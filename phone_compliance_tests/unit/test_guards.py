"""R13's guards: which snapshots are judged, when a shrink blocks, how many decisions flip."""

from __future__ import annotations

from datetime import datetime

import pytest

from phone_compliance import schema
from phone_compliance.transforms import gold, guards
from phone_compliance_tests.unit.rows import (
    OTHER_PHONE,
    PHONE,
    A,
    B,
    C,
    D,
    bronze,
    d,
    deleted,
    file_of,
    frame,
    pair_state,
    snapshot,
)

JAN, FEB, MAR, APR = (d(f"2020-{month:02d}-01") for month in (1, 2, 3, 4))


@pytest.mark.parametrize(
    ("published_through", "judged"),
    [
        (None, [JAN, FEB, MAR, APR]),  # nothing published yet: every snapshot
        ("2019-12-31", [JAN, FEB, MAR, APR]),
        ("2020-02-15", [FEB, MAR, APR]),  # the new ones and the one before them
        ("2020-02-01", [FEB, MAR, APR]),  # published through February: February is not new
        ("2020-03-01", [MAR, APR]),
        ("2020-04-01", []),  # nothing new: nothing judged
    ],
)
def test_r13_only_new_snapshots_and_the_one_before_are_judged(published_through, judged):
    assert guards.snapshots_to_judge([MAR, JAN, APR, FEB], published_through) == judged


@pytest.mark.parametrize(
    ("before", "after", "blocks"),
    [
        (100, 80, False),  # exactly 20% fewer: allowed
        (100, 79, True),  # more than 20% fewer: blocked
        (10, 8, False),
        (1000, 799, True),
        (100, 150, False),  # growth never blocks
        (0, 0, False),  # an empty previous snapshot cannot shrink
    ],
)
def test_r13_a_snapshot_shrinking_by_more_than_20_percent_blocks(before, after, blocks):
    got = guards.shrunk_snapshots({FEB: before, MAR: after}, "2020-02-01", max_shrink=0.2)
    want = [{"snapshot": "2020-03-01", "pairs": after, "previous_pairs": before}]
    assert got == (want if blocks else [])


def test_r13_only_new_snapshots_are_judged_for_a_shrink():
    pairs = {JAN: 100, FEB: 10, MAR: 9, APR: 1}
    # February shrank long ago and was published; March is fine; April shrank.
    assert guards.shrunk_snapshots(pairs, "2020-02-01", max_shrink=0.2) == [
        {"snapshot": "2020-04-01", "pairs": 1, "previous_pairs": 9}
    ]
    assert [s["snapshot"] for s in guards.shrunk_snapshots(pairs, None, max_shrink=0.2)] == [
        "2020-02-01",
        "2020-04-01",
    ]


def test_r13_snapshot_pair_counts_counts_distinct_pairs_per_snapshot(spark):
    snapshot_rows = bronze(
        spark,
        schema.SNAPSHOT,
        [
            snapshot(A, PHONE, "2020-01-01"),  # a snapshot not asked for
            snapshot(A, PHONE, "2020-02-01", consumer_type="P"),
            snapshot(A, PHONE, "2020-02-01", consumer_type="S"),  # same pair (R4)
            snapshot(A, OTHER_PHONE, "2020-02-01"),
            snapshot(B, PHONE, "2020-02-01", seq=2, clock="060500000"),  # another part
            snapshot(B, PHONE, "2020-03-01"),
        ],
    )
    assert guards.snapshot_pair_counts(snapshot_rows, [FEB, MAR, APR]) == {FEB: 3, MAR: 1, APR: 0}
    # Nothing new to judge (a run with no new snapshot): nothing counted.
    assert guards.snapshot_pair_counts(snapshot_rows, []) == {}


def test_r6_snapshot_files_are_the_readable_parts_of_each_snapshot_date(spark):
    def ledger_row(family, day, status, seq=1, clock="060000000", delivered=1):
        return {
            "source_file": file_of(family, day, seq, clock),
            "family": family.name,
            "file_date": d(day),
            "status": status,
            "ingested_at": datetime(2020, 6, delivered),
        }

    ok, rejected = schema.LEDGER_INGESTED, schema.LEDGER_REJECTED
    ledger = frame(
        spark,
        schema.FILE_LEDGER,
        [
            ledger_row(schema.SNAPSHOT, "2020-02-01", ok, seq=2, clock="060500000"),
            ledger_row(schema.SNAPSHOT, "2020-02-01", ok),
            ledger_row(schema.SNAPSHOT, "2020-02-01", ok),  # the same version recorded again
            ledger_row(schema.SNAPSHOT, "2020-03-01", rejected),  # all of March unreadable
            ledger_row(schema.SNAPSHOT, "2020-04-01", rejected, seq=2),
            ledger_row(schema.SNAPSHOT, "2020-04-01", ok),
            # R1.3: a broken re-delivery leaves the last readable version of its name in force.
            ledger_row(schema.SNAPSHOT, "2020-05-01", ok, delivered=1),
            ledger_row(schema.SNAPSHOT, "2020-05-01", rejected, delivered=2),
            ledger_row(schema.CHANGE, "2020-03-01", ok),
            ledger_row(schema.ENROLLMENT, "2020-03-01", ok),
        ],
    )
    assert guards.snapshot_files(ledger) == {
        FEB: [
            file_of(schema.SNAPSHOT, "2020-02-01"),
            file_of(schema.SNAPSHOT, "2020-02-01", 2, "060500000"),
        ],
        APR: [file_of(schema.SNAPSHOT, "2020-04-01")],
        d("2020-05-01"): [file_of(schema.SNAPSHOT, "2020-05-01")],
    }


def test_r13_decision_flips_is_the_fraction_of_published_decisions_that_change(spark):
    published = gold.decisions(
        frame(
            spark,
            schema.SILVER_PAIR,
            [pair_state(acct, PHONE) for acct in (A, B, C, D)],
        )
    )
    pair_state_now = frame(
        spark,
        schema.SILVER_PAIR,
        [
            pair_state(A, PHONE),
            pair_state(B, PHONE, **deleted()),  # flips
            pair_state(C, PHONE, quality_score=1),  # changes, does not flip
            pair_state(D, PHONE),
            pair_state(D, OTHER_PHONE, has_sms_consent=False),  # new: not a published decision
        ],
    )
    flips = guards.decision_flips(published, pair_state_now)
    assert (flips.published, flips.flips, flips.fraction) == (4, 1, 0.25)


def test_r13_no_published_decisions_means_no_flips():
    assert guards.Flips(published=0, flips=0).fraction == 0.0

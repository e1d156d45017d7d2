"""Silver's rules R4–R9 and R12 on tiny in-memory Bronze frames, through the pure transforms."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from phone_compliance import schema
from phone_compliance.transforms import silver
from phone_compliance_tests.unit.rows import (
    OTHER_PHONE,
    PHONE,
    A,
    B,
    C,
    D,
    bronze,
    by_pair,
    change,
    d,
    enrollment,
    file_of,
    snapshot,
    snapshot_parts,
)

Rows = Sequence[Mapping[str, object]]


def reconcile(
    spark: SparkSession,
    enrollments: Rows = (),
    snapshots: Rows = (),
    changes: Rows = (),
    snapshot_files: Mapping[date, Sequence[str]] | None = None,
) -> DataFrame:
    """Silver of the given Bronze rows; the snapshots are those the snapshot rows come from."""
    ev = silver.evidence(
        bronze(spark, schema.ENROLLMENT, enrollments),
        bronze(spark, schema.SNAPSHOT, snapshots),
        bronze(spark, schema.CHANGE, changes),
    )
    return silver.reconcile(
        ev, snapshot_parts(snapshots) if snapshot_files is None else snapshot_files
    )


def pairs(spark: SparkSession, **rows) -> dict[tuple[str, str], dict[str, object]]:
    return by_pair(reconcile(spark, **rows))


def deletion(row: Mapping[str, object]) -> tuple[object, ...]:
    return (row["is_deleted"], row["delete_type"], row["deleted_at"])


def test_silver_rows_have_the_silver_pair_schema(spark):
    got = reconcile(spark, snapshots=[snapshot(A, PHONE, "2020-02-01")])
    want = StructType.fromDDL(schema.ddl(schema.SILVER_PAIR))
    assert [(f.name, f.dataType) for f in got.schema] == [(f.name, f.dataType) for f in want]


def test_r4_consumers_of_one_account_are_one_pair_and_accounts_stay_apart(spark):
    got = pairs(
        spark,
        snapshots=[
            snapshot(A, PHONE, "2020-02-01", consumer_type="P"),
            snapshot(A, PHONE, "2020-02-01", consumer_type="S", cnsmr_phn_id="101"),
            snapshot(B, PHONE, "2020-02-01"),
        ],
        changes=[change(A, PHONE, "2020-02-05", deleted="Y", consumer_type="S")],
    )
    assert set(got) == {(A, PHONE), (B, PHONE)}
    # The secondary consumer's deletion deletes the account's pair, never the other account's.
    assert got[(A, PHONE)]["is_deleted"] is True
    assert got[(B, PHONE)]["is_deleted"] is False


@pytest.mark.parametrize(
    ("family", "presence"),
    [
        ("enrollments", enrollment(A, PHONE, "2020-02-01", file_day="2020-02-03")),
        ("snapshots", snapshot(A, PHONE, "2020-02-01")),
        ("changes", change(A, PHONE, "2020-02-01", deleted="N", cnsmr_phn_hst_id="499")),
    ],
    ids=["enrollment", "snapshot", "change"],
)
def test_r5_deletion_beats_presence_on_the_same_date_whatever_the_source(spark, family, presence):
    soft = change(A, PHONE, "2020-02-01", deleted="Y", file_day="2020-02-03")
    rows = {"changes": [soft]}
    rows.setdefault(family, []).append(presence)
    got = pairs(spark, **rows)[(A, PHONE)]
    assert deletion(got) == (True, schema.SOFT_DELETE, d("2020-02-01"))
    assert got["latest_present_date"] == d("2020-02-01")


def test_r5_a_pair_present_again_strictly_later_is_not_deleted(spark):
    got = pairs(
        spark,
        snapshots=[snapshot(A, PHONE, "2020-02-01"), snapshot(B, PHONE, "2020-02-01")],
        changes=[
            change(A, PHONE, "2020-02-05", deleted="Y", file_day="2020-02-08"),
            change(A, PHONE, "2020-02-06", deleted="N", file_day="2020-02-08"),
            change(B, PHONE, "2020-02-05", deleted="Y", file_day="2020-02-08"),
        ],
        enrollments=[enrollment(B, PHONE, "2020-02-06", file_day="2020-02-08")],
    )
    assert deletion(got[(A, PHONE)]) == (False, None, None)
    assert got[(A, PHONE)]["latest_present_date"] == d("2020-02-06")
    # An enrollment re-adds the phone just as well: every *present* evidence counts.
    assert deletion(got[(B, PHONE)]) == (False, None, None)


def test_r5_a_pair_with_only_soft_deleted_rows_is_deleted_as_of_its_earliest(spark):
    later = change(A, PHONE, "2020-02-06", deleted="Y", file_day="2020-02-08")
    earliest = change(A, PHONE, "2020-02-04", deleted="Y", file_day="2020-02-05")
    got = pairs(spark, changes=[later, earliest])[(A, PHONE)]
    assert deletion(got) == (True, schema.SOFT_DELETE, d("2020-02-04"))
    assert (got["latest_present_date"], got["presence_file"]) == (None, None)
    assert got["deletion_file"] == earliest["source_file"]


def test_r6_a_pair_missing_from_a_snapshot_on_or_after_p_is_hard_deleted(spark):
    got = pairs(
        spark,
        # C is known from ENRLMT only; D is enrolled on the very date of a snapshot without it.
        enrollments=[enrollment(C, PHONE, "2020-02-15"), enrollment(D, PHONE, "2020-03-01")],
        snapshots=[
            snapshot(A, PHONE, "2020-02-01"),
            snapshot(B, PHONE, "2020-02-01"),
            snapshot(B, PHONE, "2020-03-01"),
            snapshot(B, PHONE, "2020-04-01"),
        ],
    )
    march = (True, schema.HARD_DELETE, d("2020-03-01"))
    assert {acct: deletion(got[(acct, PHONE)]) for acct in (A, C, D)} == {
        A: march,
        C: march,
        D: march,
    }
    assert got[(A, PHONE)]["deletion_file"] == file_of(schema.SNAPSHOT, "2020-03-01")
    assert got[(B, PHONE)]["is_deleted"] is False


def test_r6_snapshots_before_p_do_not_count(spark):
    got = pairs(
        spark,
        # A left the 2020-02-01 snapshot but came back by SUPPLFWD afterwards;
        # C was enrolled after the last snapshot, which cannot list it yet.
        snapshots=[
            snapshot(A, PHONE, "2020-01-01"),
            snapshot(B, PHONE, "2020-01-01"),
            snapshot(B, PHONE, "2020-02-01"),
        ],
        changes=[change(A, PHONE, "2020-02-10", deleted="N")],
        enrollments=[enrollment(C, PHONE, "2020-02-05")],
    )
    assert deletion(got[(A, PHONE)]) == (False, None, None)
    assert deletion(got[(C, PHONE)]) == (False, None, None)


@pytest.mark.parametrize("readable", [False, True], ids=["all-files-rejected", "empty-but-read"])
def test_r6_a_snapshot_date_without_a_readable_file_is_no_snapshot(spark, readable):
    """A snapshot is its readable files, even with no rows (a header only); a date whose files
    were all rejected has no rows in Bronze and is no snapshot at all."""
    rows = [snapshot(A, PHONE, "2020-02-01")]
    files = snapshot_parts(rows)
    if readable:
        files[d("2020-03-01")] = [file_of(schema.SNAPSHOT, "2020-03-01")]
    got = pairs(spark, snapshots=rows, snapshot_files=files)[(A, PHONE)]
    if readable:
        assert deletion(got) == (True, schema.HARD_DELETE, d("2020-03-01"))
    else:
        assert deletion(got) == (False, None, None)


def test_r6_a_snapshot_in_several_parts_is_one_snapshot(spark):
    got = pairs(
        spark,
        snapshots=[
            snapshot(A, PHONE, "2020-02-01", seq=1),
            snapshot(B, PHONE, "2020-02-01", seq=2, clock="060500000"),
            snapshot(B, PHONE, "2020-03-01", seq=2, clock="060500000"),
        ],
        snapshot_files={
            d("2020-02-01"): [
                file_of(schema.SNAPSHOT, "2020-02-01", 1),
                file_of(schema.SNAPSHOT, "2020-02-01", 2, "060500000"),
            ],
            # Part 1 of March was read and held no row of A: A is absent from March.
            d("2020-03-01"): [
                file_of(schema.SNAPSHOT, "2020-03-01", 1),
                file_of(schema.SNAPSHOT, "2020-03-01", 2, "060500000"),
            ],
        },
    )
    assert got[(B, PHONE)]["is_deleted"] is False
    assert deletion(got[(A, PHONE)]) == (True, schema.HARD_DELETE, d("2020-03-01"))
    # R12: a hard deletion names every part of the snapshot that left the pair out.
    assert got[(A, PHONE)]["deletion_file"] == ",".join(
        sorted(
            [
                file_of(schema.SNAPSHOT, "2020-03-01", 1),
                file_of(schema.SNAPSHOT, "2020-03-01", 2, "060500000"),
            ]
        )
    )


def test_r7_deleted_at_is_the_earliest_deletion_on_or_after_p(spark):
    got = pairs(
        spark,
        snapshots=[
            snapshot(A, PHONE, "2020-02-01"),
            snapshot(B, PHONE, "2020-02-01"),
            snapshot(C, PHONE, "2020-02-01"),
            snapshot(C, PHONE, "2020-03-01"),
        ],
        changes=[
            # A: a soft delete before P does not count; the March absence comes first after P.
            change(A, PHONE, "2020-01-20", deleted="Y"),
            change(A, PHONE, "2020-03-15", deleted="Y"),
            # B: a soft delete after P comes before the March absence.
            change(B, PHONE, "2020-02-20", deleted="Y"),
        ],
    )
    assert deletion(got[(A, PHONE)]) == (True, schema.HARD_DELETE, d("2020-03-01"))
    assert deletion(got[(B, PHONE)]) == (True, schema.SOFT_DELETE, d("2020-02-20"))
    assert got[(B, PHONE)]["deletion_file"] == file_of(schema.CHANGE, "2020-02-20")
    assert deletion(got[(C, PHONE)]) == (False, None, None)
    assert got[(C, PHONE)]["deletion_file"] is None


def test_r7_soft_delete_beats_hard_delete_on_the_same_date(spark):
    got = pairs(
        spark,
        snapshots=[
            snapshot(A, PHONE, "2020-02-01"),
            snapshot(B, PHONE, "2020-02-01"),
            snapshot(B, PHONE, "2020-03-01"),
        ],
        changes=[change(A, PHONE, "2020-03-01", deleted="Y", file_day="2020-03-02")],
    )[(A, PHONE)]
    assert deletion(got) == (True, schema.SOFT_DELETE, d("2020-03-01"))
    assert got["deletion_file"] == file_of(schema.CHANGE, "2020-03-02")


def test_r8_latest_row_wins_by_date_then_rank_then_file_timestamp_then_row_text(spark):
    enrollments = [
        # C, by rank: ENRLMT (1) < NON-FIN-BDL (2) < SUPPLFWD (3) on one date.
        enrollment(C, PHONE, "2020-02-01", phone_source="CONSUMER", file_day="2020-02-03"),
        # C's other phone: NON-FIN-BDL (2) over ENRLMT (1) on one date.
        enrollment(C, OTHER_PHONE, "2020-02-01", phone_source="CONSUMER"),
        # A, by date: a later date wins over a higher rank.
        enrollment(A, PHONE, "2020-02-10", phone_source="CONSUMER", file_day="2020-02-11"),
    ]
    snapshots = [
        snapshot(A, PHONE, "2020-02-01"),
        snapshot(B, PHONE, "2020-02-01"),
        snapshot(C, PHONE, "2020-02-01", phone_source="OTHER"),
        snapshot(D, PHONE, "2020-02-01"),
        snapshot(C, OTHER_PHONE, "2020-02-01", phone_source="OTHER"),
    ]
    changes = [
        change(A, PHONE, "2020-02-05", phone_source="THIRD_PARTY", file_day="2020-02-08"),
        # B, by file timestamp: the later file wins although its row text is smaller.
        change(
            B,
            PHONE,
            "2020-02-05",
            phone_source="OTHER",
            cnsmr_phn_hst_id="9",
            file_day="2020-02-08",
            clock="060000000",
        ),
        change(
            B,
            PHONE,
            "2020-02-05",
            phone_source="THIRD_PARTY",
            cnsmr_phn_hst_id="1",
            file_day="2020-02-08",
            clock="070000000",
        ),
        change(C, PHONE, "2020-02-01", phone_source="THIRD_PARTY", file_day="2020-02-08"),
        # D, by row text: same date, rank and file; the greater text ("2|…" > "1|…") wins.
        change(
            D,
            PHONE,
            "2020-02-05",
            phone_source="THIRD_PARTY",
            phone_type="HOME",
            cnsmr_phn_hst_id="1",
        ),
        change(
            D, PHONE, "2020-02-05", phone_source="OTHER", phone_type="WORK", cnsmr_phn_hst_id="2"
        ),
    ]
    got = pairs(spark, enrollments=enrollments, snapshots=snapshots, changes=changes)
    assert {pair: row["phone_source"] for pair, row in got.items()} == {
        (A, PHONE): "CONSUMER",
        (B, PHONE): "THIRD_PARTY",
        (C, PHONE): "THIRD_PARTY",
        (C, OTHER_PHONE): "OTHER",
        (D, PHONE): "OTHER",
    }
    # All the attributes come from that one row, and the row's file is named (R12).
    assert got[(D, PHONE)]["phone_type"] == "WORK"
    assert got[(B, PHONE)]["attributes_file"] == file_of(
        schema.CHANGE, "2020-02-08", 1, "070000000"
    )


def test_r9_consent_by_its_own_date_n_wins_a_tie_and_empty_never_overrides(spark):
    snapshots = [
        snapshot(A, PHONE, "2020-02-01", consent="Y", consent_date="2020-01-10"),
        snapshot(B, PHONE, "2020-02-01", consent="Y", consent_date="2020-01-10"),
        snapshot(C, PHONE, "2020-02-01", consent="N"),  # no consent date: the snapshot's date
        snapshot(D, PHONE, "2020-02-01", consent="Y"),
        snapshot(D, PHONE, "2020-03-01", consent="", consent_date="2020-02-20"),
        snapshot(A, OTHER_PHONE, "2020-02-01"),
    ]
    changes = [
        # A: a later row with an older consent date loses.
        change(A, PHONE, "2020-02-05", consent="N", consent_date="2020-01-09"),
        # B: a tie on the consent date goes to N.
        change(B, PHONE, "2020-02-05", consent="N", consent_date="2020-01-10"),
        # C: Y dated before the snapshot's own date loses to the snapshot's N.
        change(C, PHONE, "2020-02-05", consent="Y", consent_date="2020-01-31"),
        # D: empty flags, later rows and all, are no observation.
        change(D, PHONE, "2020-03-05", consent=""),
    ]
    got = pairs(spark, snapshots=snapshots, changes=changes)
    consent = {
        key: (row["has_sms_consent"], row["sms_consent_updated_at"]) for key, row in got.items()
    }
    assert consent == {
        (A, PHONE): (True, d("2020-01-10")),
        (B, PHONE): (False, d("2020-01-10")),
        (C, PHONE): (False, d("2020-02-01")),
        (D, PHONE): (True, d("2020-02-01")),
        (A, OTHER_PHONE): (None, None),  # no observation: implicit consent
    }
    assert got[(A, PHONE)]["consent_file"] == file_of(schema.SNAPSHOT, "2020-02-01")
    assert got[(B, PHONE)]["consent_file"] == file_of(schema.CHANGE, "2020-02-05")
    assert got[(A, OTHER_PHONE)]["consent_file"] is None


def test_r9_n_wins_a_tie_whatever_the_source_rank(spark):
    got = pairs(
        spark,
        snapshots=[snapshot(A, PHONE, "2020-02-01", consent="N", consent_date="2020-01-10")],
        changes=[change(A, PHONE, "2020-02-05", consent="Y", consent_date="2020-01-10")],
    )[(A, PHONE)]
    assert (got["has_sms_consent"], got["consent_file"]) == (
        False,
        file_of(schema.SNAPSHOT, "2020-02-01"),
    )


def test_r5_r9_dates_order_the_same_before_1970_and_up_to_9999(spark):
    """Silver packs dates into integers to order evidence (negative before 1970): the order, and
    the dates unpacked from it, hold at both ends of the calendar."""
    got = pairs(
        spark,
        enrollments=[enrollment(A, PHONE, "1969-12-31")],
        snapshots=[snapshot(B, PHONE, "1969-12-31", consent="Y", consent_date="1969-06-02")],
        changes=[
            change(A, PHONE, "1969-12-31", deleted="Y"),
            change(B, PHONE, "1970-01-05", consent="N", consent_date="1969-06-01"),
            change(C, PHONE, "9999-12-31", consent="Y", consent_date="9999-12-31"),
            change(C, PHONE, "9999-12-30", consent="N", consent_date="9999-12-31"),
        ],
    )
    summary = {
        acct: (
            row["latest_present_date"],
            row["delete_type"],
            row["deleted_at"],
            row["has_sms_consent"],
            row["sms_consent_updated_at"],
        )
        for (acct, _), row in got.items()
    }
    assert summary == {
        A: (d("1969-12-31"), schema.SOFT_DELETE, d("1969-12-31"), None, None),
        B: (d("1970-01-05"), None, None, True, d("1969-06-02")),
        C: (d("9999-12-31"), None, None, False, d("9999-12-31")),
    }


def test_r1_4_exact_duplicate_rows_count_once(spark):
    once = {
        "snapshots": [
            snapshot(A, PHONE, "2020-02-01", consent="Y"),
            snapshot(B, PHONE, "2020-02-01"),
        ],
        "changes": [change(A, PHONE, "2020-02-05", deleted="Y", phone_source="OTHER")],
        "enrollments": [enrollment(C, PHONE, "2020-01-15")],
    }
    # The same rows delivered again on later lines of the same files.
    thrice = {
        family: [{**row, "line_number": line} for row in rows for line in (2, 3, 4)]
        for family, rows in once.items()
    }
    assert_df_equality(reconcile(spark, **thrice), reconcile(spark, **once), ignore_row_order=True)


def test_r12_every_silver_row_names_the_files_that_decided_it(spark):
    listed = snapshot(A, PHONE, "2020-02-01", consent="Y", consent_date="2020-01-30")
    changed = change(A, PHONE, "2020-02-05", file_day="2020-02-08")
    left_out = [
        snapshot(B, PHONE, "2020-03-01", seq=1),
        snapshot(B, PHONE, "2020-03-01", seq=2, clock="060500000"),
    ]
    soft = change(A, PHONE, "2020-03-10", deleted="Y", phone_source="OTHER")
    got = pairs(spark, snapshots=[listed, *left_out], changes=[changed, soft])
    files = {k: v for k, v in got[(A, PHONE)].items() if k.endswith("_file")}
    assert files == {
        "attributes_file": soft["source_file"],  # the latest row
        "presence_file": changed["source_file"],  # P
        "deletion_file": ",".join(sorted(r["source_file"] for r in left_out)),  # before `soft`
        "consent_file": listed["source_file"],
    }
    # Present in both parts of one snapshot: the part with the later file timestamp is named.
    assert got[(B, PHONE)]["presence_file"] == left_out[1]["source_file"]


_R12_ROWS = {
    "enrollments": [
        enrollment(C, PHONE, "2020-02-01", phone_source="CONSUMER"),
        enrollment(D, PHONE, "2020-02-15"),
    ],
    "snapshots": [
        snapshot(acct, phone, day, consent=flag, cnsmr_phn_id=str(i))
        for i, (acct, phone, day, flag) in enumerate(
            [
                (A, PHONE, "2020-02-01", "Y"),
                (A, PHONE, "2020-02-01", "N"),
                (B, PHONE, "2020-02-01", ""),
                (C, PHONE, "2020-02-01", "Y"),
                (A, PHONE, "2020-03-01", ""),
                (B, OTHER_PHONE, "2020-03-01", "N"),
            ]
        )
    ],
    "changes": [
        change(B, PHONE, "2020-02-20", deleted="Y", cnsmr_phn_hst_id="1"),
        change(B, PHONE, "2020-02-20", phone_source="OTHER", cnsmr_phn_hst_id="2"),
        change(A, PHONE, "2020-03-01", consent="Y", phone_type="HOME", cnsmr_phn_hst_id="3"),
        change(A, PHONE, "2020-03-01", consent="N", phone_type="WORK", cnsmr_phn_hst_id="4"),
    ],
}


def test_r12_row_order_and_partitioning_do_not_change_silver(spark):
    rows = _R12_ROWS
    shuffled = {family: random.Random(7).sample(list(r), len(r)) for family, r in rows.items()}

    ev = silver.evidence(
        *[
            bronze(spark, family, shuffled[name]).repartition(3)
            for family, name in (
                (schema.ENROLLMENT, "enrollments"),
                (schema.SNAPSHOT, "snapshots"),
                (schema.CHANGE, "changes"),
            )
        ]
    )
    reordered = silver.reconcile(ev, snapshot_parts(reversed(rows["snapshots"]))).collect()
    assert Counter(reordered) == Counter(reconcile(spark, **rows).collect())

    # R12 again: each decided part of every pair names its file, and only a decided part does.
    for row in reordered:
        assert row["attributes_file"] is not None
        assert (row["presence_file"] is None) == (row["latest_present_date"] is None)
        assert (row["deletion_file"] is None) == (not row["is_deleted"])
        assert (row["consent_file"] is None) == (row["has_sms_consent"] is None)


# Soft deletions on both sides of a later presence: merging must drop the one before P.
_SPLIT_ROWS = {
    **_R12_ROWS,
    "changes": [
        *_R12_ROWS["changes"],
        change(D, PHONE, "2020-02-20", deleted="Y", cnsmr_phn_hst_id="5"),
        change(D, PHONE, "2020-03-20", deleted="Y", cnsmr_phn_hst_id="6"),
        change(D, PHONE, "2020-03-01", cnsmr_phn_hst_id="7"),
        change(C, OTHER_PHONE, "2020-01-10", deleted="Y", cnsmr_phn_hst_id="8"),
    ],
}


@pytest.mark.parametrize("seed", range(4))
def test_r12_evidence_split_into_batches_in_any_order_merges_to_the_silver_of_all(spark, seed):
    """The incremental path's core: the states of any batches, merged in any order, finalize to
    what one pass over all the evidence gives."""
    rng = random.Random(seed)
    families = {
        "enrollments": schema.ENROLLMENT,
        "snapshots": schema.SNAPSHOT,
        "changes": schema.CHANGE,
    }
    batches: list[dict[str, list]] = [{name: [] for name in families} for _ in range(3)]
    for name, rows in _SPLIT_ROWS.items():
        for row in rows:
            batches[rng.randrange(3)][name].append(row)
    state = None
    for batch in rng.sample(batches, 3):
        ev = silver.evidence(*[bronze(spark, f, batch[name]) for name, f in families.items()])
        new = silver.pair_evidence(ev)
        state = new if state is None else silver.merge_states(state, new)
    merged = silver.finalize(state, snapshot_parts(_SPLIT_ROWS["snapshots"])).collect()
    assert Counter(merged) == Counter(reconcile(spark, **_SPLIT_ROWS).collect())

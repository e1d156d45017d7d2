"""The Spark transforms against the reference model on random evidence histories (hypothesis)."""

from __future__ import annotations

import itertools
import tempfile
from datetime import date, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phone_compliance import schema
from phone_compliance.transforms import history
from phone_compliance_tests import files as f
from phone_compliance_tests import model
from phone_compliance_tests.harness import (
    as_of,
    decide_checked,
    decide_in_memory,
    history_in_memory,
)

ACCOUNTS = ("1111222233334444", "5555666677778888")
PHONES = ("(212) 555-0123", "+1 646 555 0199")
DAYS = [date(2020, 1, 6) + timedelta(days=7 * i) for i in range(10)]

day = st.sampled_from(DAYS)
pair = st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(PHONES))
flag = st.sampled_from(["", "", "Y", "N"])
consent_day = st.one_of(st.just(""), day.map(date.isoformat))
source = st.sampled_from(["CLIENT", "CLIENT", "CLIENT", "CONSUMER", "OTHER"])
letter = st.sampled_from("PPS")

snapshot_row = st.tuples(pair, flag, consent_day, source, letter)
snapshots = st.dictionaries(day, st.lists(snapshot_row, max_size=4), max_size=4)
enrollments = st.lists(st.tuples(pair, day, source, st.integers(0, 3)), max_size=4)
changes = st.lists(
    st.tuples(pair, day, st.sampled_from("YNN"), flag, consent_day, source, st.integers(0, 6)),
    max_size=6,
)


def write_history(landing: Path, snaps, enrolls, chgs) -> None:
    """Files as the client sends them: snapshots on their date, others a few days after events."""
    for snap_day, rows in snaps.items():
        f.write(
            landing,
            schema.SNAPSHOT,
            snap_day.isoformat(),
            [
                f.snapshot(a, p, fl, cd, letter=le, cnsmr_phn_src_val_txt=src)
                for (a, p), fl, cd, src, le in rows
            ],
        )
    by_file: dict[date, list] = {}
    for (a, p), enrolled, src, lag in enrolls:
        row = f.enrollment(a, p, enrolled.isoformat(), phone_source=src)
        by_file.setdefault(enrolled + timedelta(days=lag), []).append(row)
    for file_day, rows in by_file.items():
        f.write(landing, schema.ENROLLMENT, file_day.isoformat(), rows)
    by_file = {}
    for (a, p), recorded, deleted, fl, cd, src, lag in chgs:
        row = f.change(a, p, recorded.isoformat(), deleted, fl, cd, cnsmr_phn_src_val_txt=src)
        by_file.setdefault(recorded + timedelta(days=lag), []).append(row)
    for file_day, rows in by_file.items():
        f.write(landing, schema.CHANGE, file_day.isoformat(), rows)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snaps=snapshots, enrolls=enrollments, chgs=changes)
def test_r4_to_r10_pipeline_agrees_with_model_on_random_histories(spark, snaps, enrolls, chgs):
    with tempfile.TemporaryDirectory() as tmp:
        landing = Path(tmp)
        write_history(landing, snaps, enrolls, chgs)
        decide_checked(spark, landing)


def judge_dates(file_dates: set[date]) -> list[date]:
    """Every file date, the day before each, and a day after the last: the dates where an
    as-of answer can change and those just short of it."""
    if not file_dates:
        return []
    days = {d for fd in file_dates for d in (fd, fd - timedelta(days=1))}
    return sorted(days | {max(file_dates) + timedelta(days=30)})


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snaps=snapshots, enrolls=enrollments, chgs=changes)
def test_r14_history_as_of_any_date_agrees_with_model_of_the_files_dated_by_then(
    spark, snaps, enrolls, chgs
):
    """R14 on random histories: the interval holding a date has the decision, and the facts it
    rests on, that the reference model decides from the files dated on or before it (none:
    NOT_FOUND), and on its first day every field the model decides; the last interval has Gold's
    decision; intervals follow one another and each starts with a change."""
    with tempfile.TemporaryDirectory() as tmp:
        landing = Path(tmp)
        write_history(landing, snaps, enrolls, chgs)
        histories = history_in_memory(spark, str(landing))
        current = decide_in_memory(spark, str(landing))
        rows, snapshot_dates = model.rows_from_files(landing)
    assert set(histories) == set(current)
    for pair, intervals in histories.items():
        assert intervals[-1]["valid_to"] is None, pair
        assert _decision(intervals[-1]) == _decision(current[pair]), pair
        for before, after in itertools.pairwise(intervals):
            assert before["valid_to"] == after["valid_from"], pair
            assert _decision(before) != _decision(after), pair
    for day in judge_dates({r.file_date for r in rows}):
        expected = model.decide(
            [r for r in rows if r.file_date <= day], {s for s in snapshot_dates if s <= day}
        )
        for pair, intervals in histories.items():
            got = as_of(intervals, day)
            if pair not in expected:
                assert got is None, (pair, day)
                continue
            assert got is not None, (pair, day)
            assert _decision(got) == _decision(expected[pair]), (pair, day)
            if got["valid_from"] == day:
                assert {k: got[k] for k in expected[pair]} == expected[pair], (pair, day)


def _decision(row: dict) -> dict:
    return {k: row[k] for k in history.DECISION}

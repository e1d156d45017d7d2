"""The Spark transforms against the reference model on random evidence histories (hypothesis)."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phone_compliance import schema
from phone_compliance_tests import files as f
from phone_compliance_tests.harness import decide_checked

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

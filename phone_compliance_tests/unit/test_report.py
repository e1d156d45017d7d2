"""The compliance report's numbers (transforms/report.py) on tiny histories, rejects and
publications, and its page and Markdown from plain values (report/)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime

from phone_compliance import schema
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.report import content, page
from phone_compliance.settings import Settings
from phone_compliance.transforms import report
from phone_compliance_tests.unit.rows import PHONE, A, B, C, D, d, frame

HARD, SOFT = schema.HARD_DELETE, schema.SOFT_DELETE


def interval(
    account: str, valid_from: str, valid_to: str | None, reason: str = schema.ALLOWED, **fields
) -> dict[str, object]:
    """A gold/decision_history row of the pair (account, PHONE)."""
    return {
        "account_number": account,
        "phone_number": PHONE,
        "reason": reason,
        "can_send_sms": reason == schema.ALLOWED,
        "is_deleted": False,
        "valid_from": d(valid_from),
        "valid_to": d(valid_to) if valid_to else None,
        **fields,
    }


def deleted_on(day: str, kind: str = HARD) -> dict[str, object]:
    return {"is_deleted": True, "deleted_at": d(day), "delete_type": kind}


def without_consent(day: str) -> dict[str, object]:
    return {"has_sms_consent": False, "sms_consent_updated_at": d(day)}


def history(spark, rows):
    return frame(spark, schema.DECISION_HISTORY, rows)


def test_r14_pairs_per_reason_at_each_month_end_are_the_intervals_holding_it(spark):
    rows = [
        interval(A, "2020-01-15", "2020-03-01"),
        interval(A, "2020-03-01", None, schema.DELETED, **deleted_on("2020-03-01")),
        interval(B, "2020-02-10", "2020-02-20"),  # holds no month end
        interval(B, "2020-02-20", None, schema.CONSENT_WITHDRAWN, **without_consent("2020-02-20")),
        interval(C, "2020-03-31", "2020-04-01", schema.NOT_CLIENT_SOURCED),  # holds 03-31 only
        interval(C, "2020-04-01", None),
    ]
    got = report.reasons_by_month_end(history(spark, rows)).collect()
    month_ends = [d("2020-01-31"), d("2020-02-29"), d("2020-03-31"), d("2020-04-30")]
    # valid_from <= d < coalesce(valid_to, infinity), counted one interval at a time
    expected = {}
    for day in month_ends:
        for r in rows:
            if r["valid_from"] <= day and (r["valid_to"] is None or day < r["valid_to"]):
                expected[(day, r["reason"])] = expected.get((day, r["reason"]), 0) + 1
    assert {(r["month_end"], r["reason"]): r["pairs"] for r in got if r["pairs"]} == expected
    assert expected[(d("2020-03-31"), schema.NOT_CLIENT_SOURCED)] == 1
    # every month end for every reason seen, zeros included: a chart without holes
    assert sorted({r["month_end"] for r in got}) == month_ends
    assert len(got) == len(month_ends) * 4
    # the last month end, past every file date, holds each pair's open interval: Gold now
    now = content.Aggregates(reasons_by_month_end=[r.asDict() for r in got]).current_reasons
    assert {k: v for k, v in now.items() if v} == {
        schema.DELETED: 1,
        schema.CONSENT_WITHDRAWN: 1,
        schema.ALLOWED: 1,
    }


def test_r14_an_empty_history_has_no_month_end(spark):
    assert report.reasons_by_month_end(history(spark, [])).collect() == []


def test_r5_r7_a_deletion_counts_once_at_the_first_snapshot_on_or_after_its_deleted_at(spark):
    snapshots = [d("2020-01-31"), d("2020-02-29"), d("2020-03-31")]
    rows = [
        # R6: missing from the snapshot of 02-29
        interval(A, "2020-01-10", "2020-02-29"),
        interval(A, "2020-02-29", None, schema.DELETED, **deleted_on("2020-02-29")),
        # soft-deleted; an older 'Y' row learnt later moves deleted_at: still one deletion
        interval(B, "2020-01-10", "2020-02-15"),
        interval(B, "2020-02-15", "2020-03-10", schema.DELETED, **deleted_on("2020-02-12", SOFT)),
        interval(B, "2020-03-10", "2020-03-20", schema.DELETED, **deleted_on("2020-02-05", SOFT)),
        # added again (R5), then deleted after the last snapshot
        interval(B, "2020-03-20", "2020-04-05"),
        interval(B, "2020-04-05", None, schema.DELETED, **deleted_on("2020-04-02", SOFT)),
        # R5: only SUPPLFWD 'Y' rows, deleted from its first interval
        interval(C, "2020-01-05", None, schema.DELETED, **deleted_on("2020-01-03", SOFT)),
        interval(D, "2020-01-05", None),
    ]
    got = report.deletions_by_snapshot(history(spark, rows), snapshots).collect()
    assert {(r["snapshot_date"], r["delete_type"]): r["pairs"] for r in got} == {
        (d("2020-01-31"), SOFT): 1,
        (d("2020-02-29"), HARD): 1,
        (d("2020-02-29"), SOFT): 1,
        (None, SOFT): 1,
    }


def test_r9_a_withdrawal_is_consent_turning_false_after_true_or_none_by_consent_month(spark):
    consent = {"has_sms_consent": True, "sms_consent_updated_at": d("2020-02-25")}
    withdrawn = schema.CONSENT_WITHDRAWN
    rows = [
        interval(A, "2020-01-01", "2020-02-01"),  # implicit consent (NULL)
        interval(A, "2020-02-01", "2020-03-01", withdrawn, **without_consent("2020-01-20")),
        interval(A, "2020-03-01", "2020-04-01", **consent),
        interval(A, "2020-04-01", None, withdrawn, **without_consent("2020-03-28")),
        # first seen already without consent: nothing known was withdrawn
        interval(B, "2020-01-01", None, withdrawn, **without_consent("2019-12-01")),
        # still withdrawn, by a later 'N': one withdrawal
        interval(C, "2020-01-01", "2020-02-01", **consent),
        interval(C, "2020-02-01", "2020-03-01", withdrawn, **without_consent("2020-02-01")),
        interval(C, "2020-03-01", None, withdrawn, **without_consent("2020-02-20")),
    ]
    got = report.consent_withdrawals_by_month(history(spark, rows)).collect()
    assert {r["month"]: r["withdrawals"] for r in got} == {
        d("2020-01-01"): 1,
        d("2020-02-01"): 1,
        d("2020-03-01"): 1,
    }


def test_r1_2_r1_3_rejects_per_file_date_tell_rows_from_whole_files(spark):
    def reject(day, line, reason):
        return {
            "source_file": f"f-{day}",
            "file_date": d(day) if day else None,
            "line_number": line,
            "reason": reason,
        }

    rows = [
        reject("2020-01-02", 5, schema.REJECT_PHONE),
        reject("2020-01-02", 9, schema.REJECT_PHONE),
        reject("2020-01-02", 3, schema.REJECT_DATE),
        reject("2020-01-03", 0, schema.FILE_BAD_GZIP),
        reject(None, 0, schema.FILE_BAD_NAME),
    ]
    got = report.rejects_by_file_date(frame(spark, schema.REJECTS, rows)).collect()
    assert {(r["file_date"], r["kind"], r["reason"]): r["rejects"] for r in got} == {
        (d("2020-01-02"), "row", schema.REJECT_PHONE): 2,
        (d("2020-01-02"), "row", schema.REJECT_DATE): 1,
        (d("2020-01-03"), "file", schema.FILE_BAD_GZIP): 1,
        (None, "file", schema.FILE_BAD_NAME): 1,
    }


def change(account, version, kind, old, new):
    """A gold/decision_changes row: `old`/`new` are reasons (None: no decision)."""
    return {
        "account_number": account,
        "phone_number": PHONE,
        "change": kind,
        "old_reason": old,
        "old_can_send_sms": None if old is None else old == schema.ALLOWED,
        "new_reason": new,
        "new_can_send_sms": None if new is None else new == schema.ALLOWED,
        "gold_version": version,
        "published_at": datetime(2020, 1, version),
    }


def test_r13_the_last_publications_flips_are_its_changed_can_send_sms_by_reason(spark):
    allowed, withdrawn = schema.ALLOWED, schema.CONSENT_WITHDRAWN
    rows = [
        change(A, 2, "update", allowed, schema.DELETED),  # an earlier publication
        change(A, 3, "update", allowed, withdrawn),
        change(B, 3, "update", allowed, allowed),  # lineage only: no flip
        change(C, 3, "insert", None, allowed),  # new to Gold: nothing to flip
        change(D, 3, "delete", allowed, None),  # left Gold: NOT_FOUND (R13's count)
    ]
    changes = frame(spark, schema.DECISION_CHANGES, rows)
    last = [r.asDict() for r in report.last_publication(changes).collect()]
    assert {r["gold_version"] for r in last} == {3}
    assert {(r["old_reason"], r["new_reason"]): r["flipped"] for r in last} == {
        (allowed, withdrawn): True,
        (allowed, allowed): False,
        (None, allowed): False,
        (allowed, None): True,
    }
    aggregates = content.Aggregates(last_publication=last)
    assert aggregates.publication == {
        "gold_version": 3,
        "published_at": datetime(2020, 1, 3),
        "changes": 4,
        "flips": 2,
    }
    flips = {(r["old_reason"], r["new_reason"], r["new_can_send_sms"]) for r in aggregates.flips}
    assert flips == {(allowed, withdrawn, False), (allowed, schema.NOT_FOUND, False)}


def test_no_publication_has_no_last_publication(spark):
    changes = frame(spark, schema.DECISION_CHANGES, [])
    assert report.last_publication(changes).collect() == []
    assert content.Aggregates().publication is None


GENERATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_the_report_of_an_empty_warehouse_draws_nothing_and_says_no_publication_yet():
    built = content.build(content.Aggregates(), "/w", None, GENERATED)
    assert all(s.png is None and s.empty for s in built.sections)
    assert built.section(content.FLIPS).empty == content.NO_PUBLICATION
    text = page.html(built)
    assert "no publication yet" in text and "<img" not in text
    assert set(built.totals.values()) == {0}


def test_the_page_is_one_offline_file_with_every_chart_inline_and_its_numbers():
    aggregates = content.Aggregates(
        reasons_by_month_end=[
            {"month_end": date(2020, 1, 31), "reason": schema.ALLOWED, "pairs": 3},
            {"month_end": date(2020, 2, 29), "reason": schema.ALLOWED, "pairs": 2},
            {"month_end": date(2020, 2, 29), "reason": schema.DELETED, "pairs": 1},
        ],
        deletions=[{"snapshot_date": None, "delete_type": HARD, "pairs": 1}],
        snapshots=[date(2020, 1, 31)],
        consent_withdrawals=[{"month": date(2020, 1, 1), "withdrawals": 4}],
        rejects=[{"file_date": None, "kind": "file", "reason": schema.FILE_BAD_NAME, "rejects": 1}],
        last_publication=[
            {
                "gold_version": 7,
                "published_at": GENERATED,
                "old_reason": schema.ALLOWED,
                "new_reason": reason,
                "old_can_send_sms": True,
                "new_can_send_sms": reason == schema.ALLOWED,
                "flipped": reason != schema.ALLOWED,
                "pairs": pairs,
            }
            for reason, pairs in ((schema.DELETED, 1), (schema.ALLOWED, 2))
        ],
    )
    built = content.build(aggregates, "s3://bucket/wh", 7, GENERATED)
    text = page.html(built)
    assert text.count('<img src="data:image/png;base64,') == len(built.sections) == 5
    assert "http" not in text.replace("s3://bucket/wh", "")  # nothing fetched: opens offline
    assert "<script" not in text
    assert built.totals["flips_in_last_publication"] == 1 and built.totals["rejected_files"] == 1
    # every snapshot, one without a deletion too; 'later': dated after the last snapshot
    assert built.section(content.DELETIONS).table.rows == (
        ("2020-01-31", 0, 0, 0),
        ("later", 1, 0, 1),
    )
    # Markdown for Dagster's UI: the same image inline, and a table of the numbers
    md = page.markdown(built.section(content.FLIPS))
    assert "](data:image/png;base64," in md and "| ALLOWED | DELETED | True → False | 1 |" in md


def test_the_report_lives_under_the_warehouse_local_or_s3():
    local = Locations(Settings(warehouse="/data/wh/"))
    assert local.report_uri == "/data/wh/reports/compliance.html"
    assert Locations(Settings(warehouse="file:///data/wh")).report_uri == local.report_uri
    for spelled in ("s3://bucket/wh", "s3a://bucket/wh/"):
        remote = Locations(Settings(env="production", warehouse=spelled, ssn_hash_key="k"))
        assert remote.report_uri == "s3://bucket/wh/reports/compliance.html"


def test_the_report_renders_without_spark_or_dagster():
    """report/ takes plain values: drawing a page starts no JVM and loads no Dagster."""
    code = (
        "import sys\n"
        "from datetime import datetime\n"
        "from phone_compliance.report import content, page\n"
        "page.html(content.build(content.Aggregates(), '/w', None, datetime.now()))\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pyspark', 'dagster', 'py4j')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)

"""R14, system time: Gold's change feed as one row per pair and publication (transforms/changes)."""

from __future__ import annotations

from datetime import datetime

from phone_compliance import schema
from phone_compliance.transforms import changes
from phone_compliance_tests.unit.rows import PHONE, A, B, C, frame

FEED: schema.Schema = (
    *schema.GOLD_DECISION,
    (changes.CHANGE_TYPE, "STRING"),
    (changes.COMMIT_VERSION, "BIGINT"),
    (changes.COMMIT_TIMESTAMP, "TIMESTAMP"),
)
AT = {1: datetime(2026, 1, 2, 3, 4, 5), 2: datetime(2026, 1, 3, 3, 4, 5)}


def image(account: str, kind: str, version: int, reason: str) -> dict:
    return {
        "account_number": account,
        "phone_number": PHONE,
        "can_send_sms": reason == schema.ALLOWED,
        "reason": reason,
        changes.CHANGE_TYPE: kind,
        changes.COMMIT_VERSION: version,
        changes.COMMIT_TIMESTAMP: AT[version],
    }


def test_r14_each_publication_records_the_decision_before_and_after_with_its_run(spark):
    feed = frame(
        spark,
        FEED,
        [
            image(A, "insert", 1, schema.ALLOWED),
            image(B, "insert", 1, schema.ALLOWED),
            image(A, "update_preimage", 2, schema.ALLOWED),
            image(A, "update_postimage", 2, schema.CONSENT_WITHDRAWN),
            image(B, "delete", 2, schema.ALLOWED),
            image(C, "insert", 2, schema.DELETED),
        ],
    )
    # Version 1 was published before runs were recorded: its run and files are unknown.
    publications = frame(
        spark,
        changes.PUBLICATION,
        [
            {
                "gold_version": 2,
                "run_id": "r2",
                "refresh": "incremental",
                "ledger_version": 5,
                "run_files": ["f.gz"],
            }
        ],
    )
    got = changes.decision_changes(feed, publications)
    assert schema.names(schema.DECISION_CHANGES) == got.columns
    rows = {(r["account_number"], r["gold_version"]): r.asDict() for r in got.collect()}
    assert set(rows) == {(A, 1), (B, 1), (A, 2), (B, 2), (C, 2)}

    def summary(key):
        r = rows[key]
        return (r["change"], r["old_reason"], r["new_reason"], r["run_id"], r["published_at"])

    assert summary((A, 1)) == ("insert", None, schema.ALLOWED, None, AT[1])
    assert summary((A, 2)) == ("update", schema.ALLOWED, schema.CONSENT_WITHDRAWN, "r2", AT[2])
    assert summary((B, 2)) == ("delete", schema.ALLOWED, None, "r2", AT[2])
    assert summary((C, 2)) == ("insert", None, schema.DELETED, "r2", AT[2])
    assert (rows[(A, 2)]["old_can_send_sms"], rows[(A, 2)]["new_can_send_sms"]) == (True, False)
    assert rows[(A, 2)]["run_files"] == ["f.gz"] and rows[(A, 1)]["run_files"] is None
    assert (rows[(A, 2)]["refresh"], rows[(A, 2)]["ledger_version"]) == ("incremental", 5)

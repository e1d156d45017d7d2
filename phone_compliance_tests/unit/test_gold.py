"""Gold's decision (R10), its content hash (R12) and what a publication would flip (R13)."""

from __future__ import annotations

from datetime import timedelta

from pyspark.sql.types import StructType

from phone_compliance import schema
from phone_compliance.transforms import gold
from phone_compliance_tests.unit.rows import (
    OTHER_PHONE,
    PHONE,
    A,
    B,
    C,
    D,
    by_pair,
    d,
    deleted,
    file_of,
    frame,
    pair_state,
)

E = "9999000011112222"


def decide(spark, rows):
    return by_pair(gold.decisions(frame(spark, schema.SILVER_PAIR, rows)))


def test_gold_rows_have_the_gold_decision_schema(spark):
    got = gold.decisions(frame(spark, schema.SILVER_PAIR, [pair_state(A, PHONE)]))
    want = StructType.fromDDL(schema.ddl(schema.GOLD_DECISION))
    assert [(f.name, f.dataType) for f in got.schema] == [(f.name, f.dataType) for f in want]


def test_r10_the_first_failing_condition_in_rule_order_is_the_reason(spark):
    withdrawn = {"has_sms_consent": False, "sms_consent_updated_at": d("2020-01-10")}
    got = decide(
        spark,
        [
            pair_state(A, PHONE, phone_source="CONSUMER", **deleted(**withdrawn)),
            pair_state(B, PHONE, **deleted(**withdrawn)),
            pair_state(C, PHONE, **withdrawn),
            pair_state(D, PHONE, has_sms_consent=True, sms_consent_updated_at=d("2020-01-10")),
            pair_state(E, PHONE),  # no consent observation: implicit consent
        ],
    )
    decided = {acct: (row["reason"], row["can_send_sms"]) for (acct, _), row in got.items()}
    assert decided == {
        A: (schema.NOT_CLIENT_SOURCED, False),
        B: (schema.DELETED, False),
        C: (schema.CONSENT_WITHDRAWN, False),
        D: (schema.ALLOWED, True),
        E: (schema.ALLOWED, True),
    }


def test_r10_only_the_exact_client_source_is_client(spark):
    sources = {A: "client", B: " CLIENT", C: "UNKNOWN", D: None, E: schema.CLIENT_SOURCE}
    got = decide(spark, [pair_state(acct, PHONE, phone_source=s) for acct, s in sources.items()])
    assert {acct: got[(acct, PHONE)]["reason"] for acct in sources} == {
        A: schema.NOT_CLIENT_SOURCED,
        B: schema.NOT_CLIENT_SOURCED,
        C: schema.NOT_CLIENT_SOURCED,
        D: schema.NOT_CLIENT_SOURCED,
        E: schema.ALLOWED,
    }


def _changed(value: object) -> object:
    """Another value of the same type."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    return value + timedelta(days=1)


def test_r12_content_hash_changes_iff_a_decided_field_changes(spark):
    base = pair_state(
        A,
        PHONE,
        has_sms_consent=True,
        sms_consent_updated_at=d("2020-01-10"),
        consent_file=file_of(schema.CHANGE, "2020-01-10"),
        **deleted(),
    )
    assert None not in base.values()
    changed = [{**base, name: _changed(value)} for name, value in base.items()]
    # A value that becomes NULL is a change too (JSON leaves NULL fields out).
    emptied = [{**base, name: None} for name in ("has_sms_consent", "delete_type", "quality_score")]
    rows = [base, base, *changed, *emptied]
    got = gold.decisions(frame(spark, schema.SILVER_PAIR, rows)).collect()

    hashes_by_content: dict[tuple, set[str]] = {}
    for row in got:
        content = tuple(v for k, v in row.asDict().items() if k != "content_hash")
        hashes_by_content.setdefault(content, set()).add(row["content_hash"])
    assert len(hashes_by_content) == len(rows) - 1  # every row but the repeated base differs
    assert all(len(hashes) == 1 for hashes in hashes_by_content.values())
    assert len(set().union(*hashes_by_content.values())) == len(hashes_by_content)

    # The hash is of the content, not of how Silver happens to order its columns.
    reordered = frame(spark, schema.SILVER_PAIR, [base]).select(
        *reversed(schema.names(schema.SILVER_PAIR))
    )
    (again,) = gold.decisions(reordered).collect()
    assert {again["content_hash"]} == hashes_by_content[
        tuple(v for k, v in again.asDict().items() if k != "content_hash")
    ]


def test_r13_flipped_counts_changed_and_vanished_allowed_pairs(spark):
    current = [
        pair_state(A, PHONE),  # stays allowed
        pair_state(B, PHONE),  # becomes deleted: a flip
        pair_state(C, PHONE, phone_source="OTHER"),  # not allowed, then vanishes: no flip
        pair_state(D, PHONE),  # allowed, then vanishes (NOT_FOUND): a flip
        pair_state(E, PHONE, has_sms_consent=False),  # withdrawn, then allowed: a flip
    ]
    proposed = [
        pair_state(A, PHONE, quality_score=10),  # another field changed: no flip
        pair_state(B, PHONE, **deleted()),
        pair_state(E, PHONE, has_sms_consent=True),
        pair_state(A, OTHER_PHONE),  # new pair, never published: no flip
    ]
    got = gold.flipped(
        gold.decisions(frame(spark, schema.SILVER_PAIR, current)),
        gold.decisions(frame(spark, schema.SILVER_PAIR, proposed)),
    )
    assert {(r["account_number"], r["before"], r["after"]) for r in got.collect()} == {
        (B, True, False),
        (D, True, None),
        (E, False, True),
    }

"""Gold: the decision per pair (R10) with its lineage (R12), and what a publish would flip."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from phone_compliance import schema

_HASHED = [c for c in schema.names(schema.GOLD_DECISION) if c != "content_hash"]


def reasons(silver: DataFrame) -> DataFrame:
    """R10 for every pair: `reason`, the first failing condition in SPEC order, else ALLOWED, and
    `can_send_sms`, beside Silver's columns."""
    not_client = F.coalesce(F.col("phone_source") != schema.CLIENT_SOURCE, F.lit(True))
    withdrawn = F.col("has_sms_consent") == F.lit(False)
    reason = (
        F.when(not_client, schema.NOT_CLIENT_SOURCED)
        .when(F.col("is_deleted"), schema.DELETED)
        .when(withdrawn, schema.CONSENT_WITHDRAWN)
        .otherwise(schema.ALLOWED)
    )
    return silver.withColumns({"reason": reason, "can_send_sms": reason == F.lit(schema.ALLOWED)})


def with_content_hash(decided: DataFrame, keep: Sequence[str] = ()) -> DataFrame:
    """Gold's columns of `reasons`' rows, with the hash of their content (and `keep`)."""
    content = F.to_json(F.struct(*[F.col(c) for c in _HASHED]))
    return decided.withColumn("content_hash", F.sha2(content, 256)).select(
        *schema.names(schema.GOLD_DECISION), *keep
    )


def decisions(silver: DataFrame) -> DataFrame:
    """Gold: R10 for every Silver pair, with its content hash."""
    return with_content_hash(reasons(silver))


def changed(proposed: DataFrame, published: DataFrame) -> DataFrame:
    """The proposed decisions not published as they are (new pairs, or other content)."""
    same = [*schema.PAIR_KEY, "content_hash"]
    return proposed.join(published.select(*same), same, "anti")


def flipped(current: DataFrame, proposed: DataFrame) -> DataFrame:
    """Pairs already published whose `can_send_sms` the proposed table would change (R13).

    A pair that would vanish counts as a flip when it was allowed (it would become NOT_FOUND).
    """
    before = current.select(*schema.PAIR_KEY, F.col("can_send_sms").alias("before"))
    after = proposed.select(*schema.PAIR_KEY, F.col("can_send_sms").alias("after"))
    changed = F.col("before") != F.coalesce(F.col("after"), F.lit(False))
    return before.join(after, on=list(schema.PAIR_KEY), how="left").filter(changed)

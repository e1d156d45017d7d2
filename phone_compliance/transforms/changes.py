"""What the service said, when (R14, system time): Gold's publications as decision changes.

Gold is published by MERGE of changed rows only, with Delta's Change Data Feed on, so its feed
holds exactly what each publication changed: an insert (a pair new to Gold), an update (pre- and
post-image of a pair whose decision or lineage changed) or a delete (a pair that left Gold).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from phone_compliance import schema

CHANGE_TYPE = "_change_type"
COMMIT_VERSION = "_commit_version"
COMMIT_TIMESTAMP = "_commit_timestamp"
INSERT = "insert"
UPDATE = "update"
DELETE = "delete"
# What `publications` holds per Gold version: the run that published it, how, reflecting which
# ledger version, and the file versions it applied (an incremental one's; NULL for a full build).
PUBLICATION: schema.Schema = (
    ("gold_version", "BIGINT"),
    ("run_id", "STRING"),
    ("refresh", "STRING"),
    ("ledger_version", "BIGINT"),
    ("run_files", "ARRAY<STRING>"),
)

_BEFORE = ("update_preimage", DELETE)
_AFTER = ("update_postimage", INSERT)


def _image(feed: DataFrame, kinds: tuple[str, ...], prefix: str) -> DataFrame:
    return feed.filter(F.col(CHANGE_TYPE).isin(*kinds)).select(
        *schema.PAIR_KEY,
        F.col(COMMIT_VERSION).alias("gold_version"),
        F.col(COMMIT_TIMESTAMP).alias(f"{prefix}_at"),
        F.col("can_send_sms").alias(f"{prefix}_can_send_sms"),
        F.col("reason").alias(f"{prefix}_reason"),
    )


def decision_changes(feed: DataFrame, publications: DataFrame) -> DataFrame:
    """One row per pair and Gold version of `feed` (Gold's change feed: its columns plus
    `_change_type`, `_commit_version`, `_commit_timestamp`): the decision before and after, with
    the run and files of `publications` (columns PUBLICATION; a version it lacks gets NULLs)."""
    keys = [*schema.PAIR_KEY, "gold_version"]
    changed = _image(feed, _BEFORE, "old").join(_image(feed, _AFTER, "new"), keys, "full")
    change = (
        F.when(F.col("old_at").isNull(), INSERT)
        .when(F.col("new_at").isNull(), DELETE)
        .otherwise(UPDATE)
    )
    return (
        changed.withColumns(
            {"change": change, "published_at": F.coalesce(F.col("new_at"), F.col("old_at"))}
        )
        .join(F.broadcast(publications.select(*schema.names(PUBLICATION))), "gold_version", "left")
        .select(*schema.names(schema.DECISION_CHANGES))
    )

"""The compliance report: the decision history, the rejects and Gold's publications summed up in
charts, as a static HTML page in the warehouse and as the materialization's metadata.

Thin wiring: the numbers are `transforms/report.py` (Spark; only the aggregates are collected),
the charts and the page `report/` (no Spark, no Dagster); where the page lives,
`Locations.report_uri`.
"""

import os
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
from pyspark.sql import DataFrame

from phone_compliance.ingest.ledger import evidence_at, ledger_version, snapshot_parts
from phone_compliance.lakehouse import delta_log
from phone_compliance.lakehouse.locations import Locations, is_remote
from phone_compliance.pipeline import progress
from phone_compliance.pipeline.assets import (
    DECISION_CHANGES_KEY,
    DECISION_HISTORY_KEY,
    LEDGER_KEY,
    PHONE_CONSENT_KEY,
    REJECTS_KEY,
)
from phone_compliance.report import content, page
from phone_compliance.transforms import report as numbers

COMPLIANCE_REPORT_KEY = dg.AssetKey(["reports", "compliance"])


@dg.asset(
    key=COMPLIANCE_REPORT_KEY,
    ins={
        "decision_history": dg.AssetIn(DECISION_HISTORY_KEY),
        "decision_changes": dg.AssetIn(DECISION_CHANGES_KEY),
        "rejects": dg.AssetIn(REJECTS_KEY),
    },
    deps=[PHONE_CONSENT_KEY, LEDGER_KEY],
    kinds={"spark", "matplotlib", "html"},
    group_name="reports",
    description="Compliance report (docs/report.md): decisions by reason over time, deletions "
    "per snapshot, consent withdrawals per month, rejects per file date and the last "
    "publication's flips, as charts in this metadata and as one static HTML page in the "
    "warehouse (<warehouse>/reports/compliance.html).",
)
def compliance_report(
    context: dg.AssetExecutionContext,
    decision_history: DataFrame,
    decision_changes: DataFrame,
    rejects: DataFrame,
    lakehouse: dg.ResourceParam[Locations],
) -> dg.MaterializeResult:
    """Aggregate in Spark, draw, write the page, and show the same charts in Dagster."""
    started = time.monotonic()
    snapshots = _snapshots(lakehouse)
    aggregates = content.Aggregates(
        reasons_by_month_end=_rows(numbers.reasons_by_month_end(decision_history)),
        deletions=_rows(numbers.deletions_by_snapshot(decision_history, snapshots)),
        snapshots=snapshots,
        consent_withdrawals=_rows(numbers.consent_withdrawals_by_month(decision_history)),
        rejects=_rows(numbers.rejects_by_file_date(rejects)),
        last_publication=_rows(numbers.last_publication(decision_changes)),
    )
    aggregated = time.monotonic() - started
    gold_version = delta_log.version(lakehouse, lakehouse.table_of(PHONE_CONSENT_KEY.path))
    report = content.build(
        aggregates, lakehouse.settings.warehouse, gold_version, datetime.now(UTC)
    )
    uri = publish_report(lakehouse, page.html(report))
    context.log.info(
        f"compliance report {uri}: aggregated in {aggregated:.1f}s, "
        f"{time.monotonic() - started:.1f}s in all"
    )
    return dg.MaterializeResult(metadata=_metadata(report, uri))


def _snapshots(lakehouse: Locations) -> list[date]:
    """R6's snapshot dates as of the ledger version the history reflects (the ledger's now when
    unknown)."""
    reflected = progress.reflected_version(lakehouse, lakehouse.table_of(DECISION_HISTORY_KEY.path))
    version = reflected if reflected is not None else ledger_version(lakehouse)
    return sorted(snapshot_parts(evidence_at(lakehouse, version) or {}))


def _rows(df: DataFrame) -> list[dict]:
    return [r.asDict() for r in df.collect()]


def publish_report(lakehouse: Locations, text: str) -> str:
    """Write the page to `lakehouse.report_uri`, replacing the one before it whole (a reader
    never sees half a page); returns where it is."""
    uri = lakehouse.report_uri
    body = text.encode("utf-8")
    if is_remote(uri):
        bucket, _, key = uri.partition("://")[2].partition("/")
        lakehouse.s3_client().put_object(
            Bucket=bucket, Key=key, Body=body, ContentType="text/html; charset=utf-8"
        )
        return uri
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as out:
        out.write(body)
    os.chmod(staged, 0o644)
    os.replace(staged, path)
    return uri


def _table(table: content.Table) -> dg.TableMetadataValue:
    def kind(column: int) -> str:
        values = [row[column] for row in table.rows]
        return "int" if values and all(isinstance(v, int) for v in values) else "string"

    columns = [dg.TableColumn(name, kind(i)) for i, name in enumerate(table.columns)]
    records = [dg.TableRecord(dict(zip(table.columns, row, strict=True))) for row in table.rows]
    return dg.MetadataValue.table(records, dg.TableSchema(columns=columns))


def _metadata(report: content.Report, uri: str) -> dict:
    where = {"report": dg.MetadataValue.path(uri)}
    if not is_remote(uri):
        where["report_url"] = dg.MetadataValue.url(Path(uri).resolve().as_uri())
    gold = (
        dg.MetadataValue.int(report.gold_version)
        if report.gold_version is not None
        else dg.MetadataValue.text("no publication yet")
    )
    return {
        **where,
        "gold_version": gold,
        # The charts, as Dagster's UI renders Markdown: the PNG inline.
        **{s.key: dg.MetadataValue.md(page.markdown(s)) for s in report.sections},
        "pairs_by_reason": _table(report.summary),
        "flips_by_reason": _table(report.section(content.FLIPS).table),
        "rejects_by_reason": _table(report.reject_reasons),
        # One number each, so that the Plots tab charts them run over run.
        **report.totals,
    }

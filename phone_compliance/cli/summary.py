"""A short, human summary of a pipeline run: what each table's step did, rows per table, rejects,
decisions, checks. Read with delta-rs: a run that had nothing to do never starts Spark."""

from __future__ import annotations

from collections import Counter

import dagster as dg

from phone_compliance import schema
from phone_compliance.lakehouse import delta_log
from phone_compliance.lakehouse.locations import Locations


def _by(locations: Locations, path: str, column: str) -> Counter | None:
    """Rows of the table at `path` per value of `column`; None when the table does not exist."""
    table = delta_log.columns(locations, locations.table_of(path.split("/")), [column])
    return None if table is None else Counter(table[column].to_pylist())


def _what_happened(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """Per table the run materialized, how it caught up (Silver and Gold) or what it read."""
    done = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata = {k: v.value for k, v in materialization.metadata.items()}
        path = materialization.asset_key.to_user_string()
        if "refresh" in metadata:
            written = metadata.get("pairs_written")
            done[path] = f"{metadata['refresh']}: {metadata['refresh_reason']}" + (
                f"; {written:,} rows written" if written is not None else "; nothing written"
            )
        elif "files_new" in metadata:
            done[path] = f"{metadata['files_new']} new file version(s)"
    return done


def print_summary(result: dg.ExecuteInProcessResult, locations: Locations, elapsed: float) -> None:
    """Print what the run did and where its tables are."""
    status = "succeeded" if result.success else "FAILED"
    print(f"\nphone-compliance run {result.run_id[:8]} {status} in {elapsed:.1f}s")
    print(f"  landing   {locations.landing}\n  warehouse {locations.warehouse}")
    done = _what_happened(result)
    print("\nwhat this run did")
    if not done:
        print("  nothing: no new file version, and every table reflects the ledger")
    for path, what in done.items():
        print(f"  {path:<26} {what}")
    print("\nrows per table")
    for path in schema.TABLES:
        n = delta_log.row_count(locations, locations.table_of(path.split("/")))
        print(f"  {path:<26} {'(not written)' if n is None else f'{n:,}'}")

    rejects = _by(locations, "bronze/rejects", "reason")
    if rejects:
        print("\nrejects by reason (R1)")
        for reason, n in rejects.most_common():
            print(f"  {reason:<26} {n:,}")

    gold_uri = locations.table("gold", "phone_consent")
    reasons = _by(locations, "gold/phone_consent", "reason")
    if reasons is not None:
        print(f"\ndecisions by reason (R10), Gold version {delta_log.version(locations, gold_uri)}")
        for reason, n in reasons.most_common():
            print(f"  {reason:<26} {n:,}")
        _print_examples(locations, gold_uri)

    checks = result.get_asset_check_evaluations()
    failed = [c for c in checks if not c.passed]
    print(f"\nasset checks: {len(checks) - len(failed)} passed, {len(failed)} failed")
    for c in failed:
        print(
            f"  FAILED {c.asset_check_key.to_user_string()} ({c.severity.value})"
            f"{': ' + c.description if c.description else ''}"
        )
    print("\nask a decision: uv run phone-compliance check ACCOUNT PHONE [--as-of YYYY-MM-DD]\n")


def _print_examples(locations: Locations, gold_uri: str) -> None:
    """One decision per reason: the first pair of each, by account and phone."""
    shown = ["account_number", "phone_number", "can_send_sms", "reason"]
    shown += ["phone_source", "is_deleted", "has_sms_consent"]
    table = delta_log.columns(locations, gold_uri, shown)
    rows = table.sort_by(
        [("reason", "ascending"), ("account_number", "ascending"), ("phone_number", "ascending")]
    ).to_pylist()
    first = {}
    for r in rows:
        first.setdefault(r["reason"], r)
    print("\nexample decisions")
    for r in first.values():
        print(
            f"  {r['account_number']} {r['phone_number']} can_send_sms={r['can_send_sms']!s:<5}"
            f" {r['reason']:<19} (source {r['phone_source']}, deleted {r['is_deleted']}, "
            f"consent {r['has_sms_consent']})"
        )

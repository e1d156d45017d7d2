"""What the compliance report says: from the collected aggregates (plain rows, as
`transforms/report.py` computes them) to its sections, each a chart, a caption and the table of
the chart's numbers, and its totals. docs/report.md describes each section.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from phone_compliance import schema
from phone_compliance.report import charts

Row = Mapping[str, Any]
NO_PUBLICATION = "No publication yet: Gold has not been published, so no decision has flipped."

# The sections' keys (also the materialization's metadata keys), in the report's order.
DECISIONS_OVER_TIME = "decisions_by_reason_over_time"
DELETIONS = "deletions_per_snapshot"
WITHDRAWALS = "consent_withdrawals_per_month"
REJECTS = "rejects_per_file_date"
FLIPS = "last_publication_flips"
LATER = "later"  # the deletions dated after the last snapshot


@dataclass(frozen=True)
class Aggregates:
    """The report's inputs, collected: rows as `transforms/report.py` returns them."""

    reasons_by_month_end: Sequence[Row] = ()  # month_end, reason, pairs
    deletions: Sequence[Row] = ()  # snapshot_date (None: after the last), delete_type, pairs
    snapshots: Sequence[date] = ()  # R6's snapshot dates: those without a deletion show as 0
    consent_withdrawals: Sequence[Row] = ()  # month, withdrawals
    rejects: Sequence[Row] = ()  # file_date, kind, reason, rejects
    # gold_version, published_at, old_/new_reason, old_/new_can_send_sms, flipped, pairs
    last_publication: Sequence[Row] = ()

    @property
    def current_reasons(self) -> dict[str, int]:
        """Pairs per reason now: at the last month end, which no file date passes, every pair's
        interval is its open one (R14: Gold's row)."""
        rows = self.reasons_by_month_end
        last = max((r["month_end"] for r in rows), default=None)
        return {r["reason"]: int(r["pairs"]) for r in rows if r["month_end"] == last}

    @property
    def publication(self) -> dict[str, Any] | None:
        """Gold's last publication: its version, time, pairs changed and decisions flipped."""
        rows = self.last_publication
        if not rows:
            return None
        return {
            "gold_version": rows[0]["gold_version"],
            "published_at": max(r["published_at"] for r in rows),
            "changes": sum(int(r["pairs"]) for r in rows),
            "flips": sum(int(r["pairs"]) for r in rows if r["flipped"]),
        }

    @property
    def flips(self) -> list[dict[str, Any]]:
        """The last publication's flips per reason before and after (a pair that left Gold is
        NOT_FOUND, not allowed, after)."""
        counts: dict[tuple, int] = {}
        for r in self.last_publication:
            if r["flipped"]:
                after = r["new_can_send_sms"] if r["new_can_send_sms"] is not None else False
                key = (
                    r["old_reason"],
                    r["new_reason"] or schema.NOT_FOUND,
                    r["old_can_send_sms"],
                    after,
                )
                counts[key] = counts.get(key, 0) + int(r["pairs"])
        names = ("old_reason", "new_reason", "old_can_send_sms", "new_can_send_sms")
        return [{**dict(zip(names, k, strict=True)), "pairs": n} for k, n in counts.items()]


@dataclass(frozen=True)
class Table:
    """A small table of numbers: column names and rows of plain values."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Section:
    """One chart of the report, its caption and its numbers; `png` is None when there is
    nothing to draw, and `empty` says why."""

    key: str
    title: str
    caption: str
    table: Table
    png: bytes | None = None
    empty: str = ""


@dataclass(frozen=True)
class Report:
    """The whole report: what it describes, when it was made, its totals and sections."""

    warehouse: str
    gold_version: int | None
    generated_at: datetime
    totals: Mapping[str, int]
    sections: tuple[Section, ...]
    title: str = "Phone compliance report"
    summary: Table = field(default_factory=lambda: Table(("reason", "pairs"), ()))
    reject_reasons: Table = field(default_factory=lambda: Table(("kind", "reason", "rejects"), ()))

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)


def _iso(day: date | datetime | None, empty: str = "") -> str:
    return day.isoformat() if day is not None else empty


def _moment(at: datetime) -> str:
    """A publication time: Spark's timestamps are UTC (lakehouse/spark.py) and come naive."""
    return at.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if at.tzinfo is None else at.strftime(" %Z"))


def _pivot(
    rows: Sequence[Row], index: str, column: str, value: str, columns: Sequence[str] = ()
) -> tuple[list[Any], dict[str, list[int]]]:
    """(sorted index values, {column value: values along the index}); missing cells are 0."""
    cells: dict[tuple[Any, str], int] = {}
    for r in rows:
        key = (r[index], r[column])
        cells[key] = cells.get(key, 0) + int(r[value])
    keys = sorted({i for i, _ in cells}, key=lambda v: (v is None, v))
    names = [c for c in columns if any(n == c for _, n in cells)]
    names += sorted({n for _, n in cells} - set(names))
    return keys, {n: [cells.get((k, n), 0) for k in keys] for n in names}


def _pivot_table(index_name: str, labels: Sequence[str], series: Mapping[str, list[int]]) -> Table:
    rows = tuple(
        (label, *[series[n][i] for n in series], sum(series[n][i] for n in series))
        for i, label in enumerate(labels)
    )
    return Table((index_name, *series, "total"), rows)


def decisions_over_time(aggregates: Aggregates) -> Section:
    """Pairs per reason as of each month end (R14, gold/decision_history)."""
    months, series = _pivot(
        aggregates.reasons_by_month_end, "month_end", "reason", "pairs", schema.DECISION_REASONS
    )
    title = "Decisions by reason over time"
    caption = (
        "Pairs per decision reason as of each month end (R14): the decision the files dated on "
        "or before that day give, from gold/decision_history. The last month includes every "
        "file delivered so far."
    )
    table = _pivot_table("month_end", [_iso(m) for m in months], series)
    if not months:
        return Section(DECISIONS_OVER_TIME, title, caption, table, empty="No decision history yet.")
    colours = charts.colours_for(list(series), charts.REASON_COLOURS)
    png = charts.stacked_area(months, series, "pairs", colours)
    return Section(DECISIONS_OVER_TIME, title, caption, table, png)


def deletions(aggregates: Aggregates) -> Section:
    """Deletions per snapshot, hard and soft (R5-R7, gold/decision_history)."""
    order = (schema.HARD_DELETE, schema.SOFT_DELETE)
    zeros = [
        {"snapshot_date": day, "delete_type": kind, "pairs": 0}
        for day in aggregates.snapshots
        for kind in order
    ]
    rows = [*zeros, *aggregates.deletions] if aggregates.deletions else []
    snapshots, series = _pivot(rows, "snapshot_date", "delete_type", "pairs", order)
    labels = [_iso(s, LATER) for s in snapshots]
    title = "Deletions per snapshot"
    caption = (
        "Pairs deleted (R5-R7), hard (missing from a snapshot, R6) or soft (a SUPPLFWD 'Y' "
        "row), each counted at the first snapshot dated on or after its deleted_at; "
        f"'{LATER}': dated after the last snapshot. From gold/decision_history: a pair's "
        "interval that is deleted when the one before it was not."
    )
    table = _pivot_table("snapshot_date", labels, series)
    if not snapshots:
        return Section(DELETIONS, title, caption, table, empty="No pair has been deleted.")
    colours = charts.colours_for(list(series), charts.DELETE_COLOURS)
    png = charts.stacked_bars(labels, series, "pairs deleted", colours)
    return Section(DELETIONS, title, caption, table, png)


def _months_between(first: date, last: date) -> list[date]:
    months, (year, month) = [], (first.year, first.month)
    while (year, month) <= (last.year, last.month):
        months.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def consent_withdrawals(aggregates: Aggregates) -> Section:
    """Consent withdrawals per month (R9, gold/decision_history)."""
    counts = {r["month"]: int(r["withdrawals"]) for r in aggregates.consent_withdrawals}
    months = _months_between(min(counts), max(counts)) if counts else []
    labels = [m.strftime("%Y-%m") for m in months]
    values = [counts.get(m, 0) for m in months]
    title = "Consent withdrawals per month"
    caption = (
        "Pairs whose SMS consent turned to withdrawn (R9: has_sms_consent FALSE after TRUE or "
        "none), per month of the withdrawing observation's consent date "
        "(sms_consent_updated_at), from gold/decision_history."
    )
    table = Table(("month", "withdrawals"), tuple(zip(labels, values, strict=True)))
    if not months:
        return Section(WITHDRAWALS, title, caption, table, empty="No consent has been withdrawn.")
    colours = {"withdrawals": charts.REASON_COLOURS[schema.CONSENT_WITHDRAWN]}
    png = charts.stacked_bars(labels, {"withdrawals": values}, "withdrawals", colours, legend=False)
    return Section(WITHDRAWALS, title, caption, table, png)


def rejects(aggregates: Aggregates) -> Section:
    """Rejected rows and whole files per file date and reason (R1.2, R1.3, bronze/rejects)."""
    order = (*schema.ROW_REJECT_REASONS, *schema.FILE_REJECT_REASONS, schema.FILE_UNREADABLE)
    dates, series = _pivot(aggregates.rejects, "file_date", "reason", "rejects", order)
    labels = [_iso(d, "undated") for d in dates]
    title = "Rejects by reason per file date"
    caption = (
        "Rejected rows (R1.1, R1.2) and whole files (R1.3, reasons FILE_…; one per file) per "
        "file date and reason, from bronze/rejects; 'undated': a file whose name carries no "
        "date."
    )
    table = Table(
        ("file_date", "kind", "reason", "rejects"),
        tuple(
            (_iso(r["file_date"], "undated"), r["kind"], r["reason"], int(r["rejects"]))
            for r in sorted(
                aggregates.rejects,
                key=lambda r: (r["file_date"] is None, r["file_date"], r["kind"], r["reason"]),
            )
        ),
    )
    if not dates:
        return Section(REJECTS, title, caption, table, empty="Nothing has been rejected.")
    png = charts.stacked_bars(labels, series, "rejects", charts.colours_for(list(series)))
    return Section(REJECTS, title, caption, table, png)


def _reason(value: str | None) -> str:
    return value or schema.NOT_FOUND


def flips(aggregates: Aggregates) -> Section:
    """The decisions Gold's last publication flipped, by reason (gold/decision_changes)."""
    publication = aggregates.publication
    rows = sorted(aggregates.flips, key=lambda r: (-int(r["pairs"]), _reason(r["old_reason"])))
    table = Table(
        ("from", "to", "can_send_sms", "pairs"),
        tuple(
            (
                _reason(r["old_reason"]),
                _reason(r["new_reason"]),
                f"{r['old_can_send_sms']} → {r['new_can_send_sms']}",
                int(r["pairs"]),
            )
            for r in rows
        ),
    )
    title = "The last publication's flips by reason"
    if publication is None:
        caption = "Decisions whose can_send_sms the last Gold publication changed."
        return Section(FLIPS, title, caption, table, empty=NO_PUBLICATION)
    caption = (
        f"Decisions whose can_send_sms Gold version {publication['gold_version']} (published "
        f"{_moment(publication['published_at'])}) changed, by reason before → after, from "
        f"gold/decision_changes; it changed {publication['changes']:,} pairs in all (new pairs "
        "and changes of lineage included)."
    )
    if not rows:
        empty = f"Gold version {publication['gold_version']} flipped no decision."
        return Section(FLIPS, title, caption, table, empty=empty)
    labels = [f"{a} → {b}" for a, b, _, _ in table.rows]
    colours = [charts.REASON_COLOURS.get(b, "#555555") for _, b, _, _ in table.rows]
    png = charts.horizontal_bars(labels, [n for *_, n in table.rows], colours)
    return Section(FLIPS, title, caption, table, png)


def _totals(aggregates: Aggregates) -> dict[str, int]:
    def total(rows: Sequence[Row], value: str, **where: str) -> int:
        return sum(int(r[value]) for r in rows if all(r[k] == v for k, v in where.items()))

    publication = aggregates.publication or {}
    now = aggregates.current_reasons
    return {
        "pairs": sum(now.values()),
        "pairs_allowed": now.get(schema.ALLOWED, 0),
        "deletions_hard": total(aggregates.deletions, "pairs", delete_type=schema.HARD_DELETE),
        "deletions_soft": total(aggregates.deletions, "pairs", delete_type=schema.SOFT_DELETE),
        "consent_withdrawals": total(aggregates.consent_withdrawals, "withdrawals"),
        "rejected_rows": total(aggregates.rejects, "rejects", kind="row"),
        "rejected_files": total(aggregates.rejects, "rejects", kind="file"),
        "changes_in_last_publication": int(publication.get("changes", 0)),
        "flips_in_last_publication": int(publication.get("flips", 0)),
    }


def reject_reasons(aggregates: Aggregates) -> Table:
    """Rejects per kind (row, file) and reason, over every file date."""
    counts: dict[tuple[str, str], int] = {}
    for r in aggregates.rejects:
        key = (r["kind"], r["reason"])
        counts[key] = counts.get(key, 0) + int(r["rejects"])
    return Table(("kind", "reason", "rejects"), tuple((*k, n) for k, n in sorted(counts.items())))


def build(
    aggregates: Aggregates, warehouse: str, gold_version: int | None, generated_at: datetime
) -> Report:
    """The report of `aggregates`, describing `warehouse` at Gold version `gold_version`."""
    now = aggregates.current_reasons
    order = [r for r in schema.DECISION_REASONS if r in now] + sorted(
        set(now) - set(schema.DECISION_REASONS)
    )
    summary = Table(("reason", "pairs"), tuple((r, now[r]) for r in order if now[r]))
    return Report(
        warehouse=warehouse,
        gold_version=gold_version,
        generated_at=generated_at,
        totals=_totals(aggregates),
        sections=(
            decisions_over_time(aggregates),
            deletions(aggregates),
            consent_withdrawals(aggregates),
            rejects(aggregates),
            flips(aggregates),
        ),
        summary=summary,
        reject_reasons=reject_reasons(aggregates),
    )

"""The report as one static HTML page (charts inline as base64 PNG, no script, no external CSS or
font: it opens offline, from a file or an object store), and each section as Markdown for
Dagster's metadata (the same PNG inline, as Dagster's UI renders it)."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from phone_compliance.report.content import Report, Section, Table

MARKDOWN_ROWS = 12  # rows of a section's table in its Markdown (the latest); the page has all

_STYLE = """
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; color: #212121;
       margin: 0 auto; max-width: 980px; padding: 16px 24px 48px; background: #fff; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 1px solid #e0e0e0; padding-bottom: 4px; }
dl.about { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 8px 0;
           font-size: 14px; }
dl.about dt { color: #616161; }
dl.about dd { margin: 0; font-family: "DejaVu Sans Mono", monospace; }
figure { margin: 8px 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eeeeee; }
figcaption, p.caption { font-size: 13px; color: #424242; margin-top: 6px; }
.numbers { display: inline-block; max-width: 100%; max-height: 15em; overflow: auto;
           margin-top: 8px; border: 1px solid #eeeeee; }
table { border-collapse: collapse; font-size: 12px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #f0f0f0; text-align: left;
         white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { position: sticky; top: 0; background: #fafafa; }
p.empty { font-size: 15px; color: #616161; background: #fafafa; padding: 12px;
          border: 1px dashed #bdbdbd; }
"""


def data_uri(png: bytes) -> str:
    """A PNG as a data: URI (inline in HTML or Markdown)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    return f"{value:,}" if _number(value) else str(value)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_cell(v)}</td>' if _number(v) else f"<td>{escape(_cell(v))}</td>"
            for v in row
        )
        + "</tr>"
        for row in table.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_section(section: Section) -> str:
    if section.png is None:
        chart = (
            f'<p class="empty">{escape(section.empty)}</p>'
            f'<p class="caption">{escape(section.caption)}</p>'
        )
    else:
        chart = (
            f'<figure><img src="{data_uri(section.png)}" alt="{escape(section.title)}">'
            f"<figcaption>{escape(section.caption)}</figcaption></figure>"
        )
    numbers = (
        f'<div class="numbers">{_html_table(section.table)}</div>' if section.table.rows else ""
    )
    return f'<section id="{section.key}"><h2>{escape(section.title)}</h2>{chart}{numbers}</section>'


def html(report: Report) -> str:
    """The whole report as one self-contained HTML page."""
    gold = str(report.gold_version) if report.gold_version is not None else "no publication yet"
    about = {
        "warehouse": report.warehouse,
        "Gold version": gold,
        "generated": report.generated_at.isoformat(timespec="seconds"),
    }
    about_html = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in about.items())
    summary = (
        f'<div class="numbers">{_html_table(report.summary)}</div>'
        if report.summary.rows
        else '<p class="empty">No pair has been decided yet.</p>'
    )
    sections = "\n".join(_html_section(s) for s in report.sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(report.title)}</title><style>{_STYLE}</style></head>\n"
        f"<body><header><h1>{escape(report.title)}</h1>"
        f'<dl class="about">{about_html}</dl></header>\n'
        f'<section id="decisions_now"><h2>Decisions now</h2>'
        "<p>Pairs per decision reason in Gold (R10), as gold/decision_history's open intervals "
        f"hold them.</p>{summary}</section>\n"
        f"{sections}\n</body></html>\n"
    )


def _markdown_cell(value: Any) -> str:
    return _cell(value).replace("|", "\\|")


def markdown_table(table: Table, last: int | None = None) -> str:
    """A Markdown table of `table` (its `last` rows only, when given)."""
    rows = table.rows[-last:] if last else table.rows
    lines = [
        "| " + " | ".join(table.columns) + " |",
        "|" + "|".join("---" for _ in table.columns) + "|",
        *("| " + " | ".join(_markdown_cell(v) for v in row) + " |" for row in rows),
    ]
    return "\n".join(lines)


def markdown(section: Section) -> str:
    """A section as Markdown: its chart inline, its caption, its latest numbers."""
    parts = [f"### {section.title}"]
    if section.png is None:
        parts.append(f"_{section.empty}_")
    else:
        parts.append(f"![{section.title}]({data_uri(section.png)})")
    parts.append(section.caption)
    if section.table.rows:
        shown = len(section.table.rows[-MARKDOWN_ROWS:])
        if shown < len(section.table.rows):
            parts.append(f"The last {shown} of {len(section.table.rows)} rows (all in the report):")
        parts.append(markdown_table(section.table, MARKDOWN_ROWS))
    return "\n\n".join(parts)

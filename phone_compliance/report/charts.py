"""The report's charts as PNG bytes.

Drawn on matplotlib's `Figure` with its Agg canvas, never through `pyplot`: no display, and no
global figure state shared with whatever else runs in the process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from io import BytesIO

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from phone_compliance import schema

SIZE = (8.0, 3.4)  # inches
DPI = 100
MAX_TICKS = 12
MIN_SLOTS = 8  # a chart of fewer bars keeps them this narrow, centred
# One colour per decision reason, the same in every chart.
REASON_COLOURS = {
    schema.ALLOWED: "#2e7d32",
    schema.NOT_CLIENT_SOURCED: "#78909c",
    schema.DELETED: "#c62828",
    schema.CONSENT_WITHDRAWN: "#ef6c00",
    schema.NOT_FOUND: "#bdbdbd",
}
DELETE_COLOURS = {schema.HARD_DELETE: "#c62828", schema.SOFT_DELETE: "#f9a825"}
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#8c6d31",
)


def colours_for(names: Sequence[str], known: Mapping[str, str] | None = None) -> dict[str, str]:
    """A colour per name: `known`'s, else the next of a fixed palette (stable for one input)."""
    known = known or {}
    spare = iter(c for c in _PALETTE if c not in known.values())
    return {name: known.get(name) or next(spare, "#555555") for name in names}


def _axes(ylabel: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    ax = figure.add_subplot()
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts
    ax.grid(axis="y", color="#e0e0e0", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return figure, ax


def _png(figure: Figure, ax: Axes, legend: bool) -> bytes:
    if legend:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    out = BytesIO()
    figure.savefig(out, format="png", dpi=DPI, facecolor="white")
    return out.getvalue()


def _thinned(count: int) -> list[int]:
    """At most MAX_TICKS of `count` positions, evenly spaced, the last always among them."""
    step = max(1, -(-count // MAX_TICKS))
    return list(range(count - 1, -1, -step))[::-1]


def _category_ticks(ax: Axes, labels: Sequence[str]) -> None:
    """Labels under categorical bars (thinned); a few bars stay narrow, centred."""
    at = _thinned(len(labels))
    ax.set_xticks(at, [labels[i] for i in at], rotation=30, ha="right", fontsize=8)
    pad = max(0.0, (MIN_SLOTS - len(labels)) / 2)
    ax.set_xlim(-0.6 - pad, len(labels) - 0.4 + pad)


def stacked_area(
    days: Sequence[date], series: Mapping[str, Sequence[int]], ylabel: str, colours: Mapping
) -> bytes:
    """Series stacked over dates (e.g. pairs per reason at each month end)."""
    figure, ax = _axes(ylabel)
    names = list(series)
    if len(days) == 1:  # one point has no area: a bar of its stack
        bottom = 0
        for name in names:
            ax.bar([0], [series[name][0]], bottom=bottom, color=colours[name], label=name)
            bottom += series[name][0]
        _category_ticks(ax, [days[0].isoformat()])
    else:
        ax.stackplot(
            list(days),
            *[series[name] for name in names],
            labels=names,
            colors=[colours[name] for name in names],
            alpha=0.9,
        )
        ax.set_xlim(days[0], days[-1])
        at = [days[i] for i in _thinned(len(days))]  # ticks on the data's own dates
        ax.set_xticks(at, [d.strftime("%Y-%m") for d in at], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(bottom=0)
    return _png(figure, ax, legend=True)


def stacked_bars(
    labels: Sequence[str],
    series: Mapping[str, Sequence[int]],
    ylabel: str,
    colours: Mapping,
    legend: bool = True,
) -> bytes:
    """One bar per label (a date, a month), its parts stacked (e.g. hard and soft deletions)."""
    figure, ax = _axes(ylabel)
    at = list(range(len(labels)))
    bottom = [0] * len(labels)
    for name, values in series.items():
        ax.bar(at, values, bottom=bottom, width=0.8, color=colours[name], label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    _category_ticks(ax, labels)
    return _png(figure, ax, legend=legend)


def horizontal_bars(labels: Sequence[str], values: Sequence[int], colours: Sequence[str]) -> bytes:
    """One labelled bar per row, its value written beside it (e.g. flips per reason)."""
    figure, ax = _axes("")
    at = list(range(len(labels)))[::-1]  # the first row on top
    bars = ax.barh(at, values, color=list(colours), height=0.6)
    ax.bar_label(bars, padding=3, fontsize=8)
    ax.set_yticks(at, list(labels), fontsize=8)
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.8)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("pairs")
    ax.margins(x=0.12)
    return _png(figure, ax, legend=False)

"""`decide` and `can_send_sms`: R10 for one pair, over an index or the default one.

Inputs are normalized per R11 with the pure-Python key rules (`phone_compliance.keys`); an input
that cannot be normalized raises `InvalidKey` saying why, never a silent FALSE.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from phone_compliance.service.decisions import Decision
from phone_compliance.service.index import DecisionIndex, live_index


def decide(
    account_number: str,
    phone_number: str,
    *,
    as_of: str | dt.date | None = None,
    index: DecisionIndex | str | Path | None = None,
) -> Decision:
    """R10 with its reason, Gold fields, lineage and Gold version, for one (account, phone) pair;
    with `as_of` (a date or `YYYY-MM-DD`), from the files dated on or before it (R14).

    `index` is an open `DecisionIndex`, an index directory, or None for the default location
    (`default_index_dir()`); a directory is followed as new Gold versions are published.
    Raises `InvalidKey` (R11) when an input cannot be normalized (an as-of date too),
    `IndexNotFound` when no index has been built yet.
    """
    return _resolve(index).decide(account_number, phone_number, as_of)


def can_send_sms(
    account_number: str,
    phone_number: str,
    *,
    as_of: str | dt.date | None = None,
    index: DecisionIndex | str | Path | None = None,
) -> bool:
    """R10: TRUE only when Gold says the pair may be texted (as of a date: R14); raises
    `InvalidKey` per R11."""
    return _resolve(index).can_send_sms(account_number, phone_number, as_of)


def _resolve(index: DecisionIndex | str | Path | None) -> DecisionIndex:
    if isinstance(index, DecisionIndex):
        return index
    return live_index(index).current()

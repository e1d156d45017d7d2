"""Decision inputs in pure Python: account numbers (R2), phone numbers (R3) and as-of dates
(R14), each normalized or refused with a reason (R11).

The pipeline applies the same rules with Spark functions (`transforms.bronze`); tests hold both to
the same cases.
"""

from __future__ import annotations

import datetime as dt
import re

ACCOUNT_RE = re.compile(r"^[0-9]{16}$")
LEGACY_ID_RE = re.compile(r"^([0-9]{16})([A-Z])$")
# R3: after normalization, 10 digits whose area code and exchange each start with 2-9.
NANP_RE = re.compile(r"^[2-9][0-9]{2}[2-9][0-9]{6}$")
ISO_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class InvalidKey(ValueError):
    """An input that cannot be normalized to a pair key (R11); the message says why."""


def normalize_phone(raw: str) -> str:
    """R3: a US phone number as E.164 `+1XXXXXXXXXX`, or InvalidKey saying why not."""
    digits = re.sub(r"[^0-9]", "", raw or "")
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        raise InvalidKey(f"phone number {raw!r} does not have 10 digits after normalization (R3)")
    if not NANP_RE.match(digits):
        raise InvalidKey(
            f"phone number {raw!r}: area code and exchange must each start with 2-9 (R3)"
        )
    return "+1" + digits


def normalize_account(raw: str) -> str:
    """R2: a 16-digit account number (surrounding spaces trimmed), or InvalidKey saying why not."""
    value = (raw or "").strip()
    if not ACCOUNT_RE.match(value):
        raise InvalidKey(f"account number {raw!r} is not 16 digits (R2)")
    return value


def normalize_as_of(raw: str | dt.date) -> dt.date:
    """R14: the date a decision is asked as of, a `datetime.date` or text `YYYY-MM-DD`, or
    InvalidKey saying why not (a time of day would leave the day to a time zone: refused)."""
    if isinstance(raw, dt.datetime) or not isinstance(raw, str | dt.date):
        raise InvalidKey(f"as-of date {raw!r} is not a date (YYYY-MM-DD) (R14)")
    if isinstance(raw, dt.date):
        return raw
    value = raw.strip()
    try:
        if ISO_DATE_RE.match(value):
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise InvalidKey(f"as-of date {raw!r} is not a date YYYY-MM-DD (R14)")

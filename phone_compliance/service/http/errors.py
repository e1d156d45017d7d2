"""422 items that say what is wrong without echoing what was sent (R11).

The inputs are account and phone numbers: personal data, which an error must not send back (to
end up in a client's logs). Every item carries the field (`loc`), a message made from the rule
alone, and the error `type`; never the submitted value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from phone_compliance.keys import InvalidKey, normalize_account, normalize_as_of, normalize_phone

MAX_LISTED_ERRORS = 100

# Which normalizer checks each input, and the rule it applies, stated without the value:
# `InvalidKey`'s own message quotes the input (the CLI shows it to the person who typed it).
INPUT_RULES: dict[str, tuple[Callable[[str], object], str]] = {
    "account": (normalize_account, "not 16 digits (R2)"),
    "phone": (
        normalize_phone,
        "not a US phone number: 10 digits (or 11 starting with 1) whose area code and exchange "
        "each start with 2-9 (R3)",
    ),
    "as_of": (normalize_as_of, "not a date YYYY-MM-DD (R14)"),
}


def error_item(loc: Sequence[str | int], msg: str, type_: str) -> dict[str, Any]:
    """One 422 item."""
    return {"loc": list(loc), "msg": msg, "type": type_}


def key_errors(
    account: str, phone: str, loc: Sequence[str | int], as_of: str | None = None
) -> list[dict[str, Any]]:
    """R11: an item per input that cannot be normalized, naming the field and the rule."""
    errors = []
    given = {"account": account, "phone": phone, "as_of": as_of}
    for field, raw in given.items():
        if raw is None and field == "as_of":  # optional: without it, the answer now
            continue
        normalize, rule = INPUT_RULES[field]
        try:
            normalize(raw)
        except InvalidKey:
            errors.append(error_item([*loc, field], f"{field}: {rule}", "value_error"))
    return errors


def missing_errors(loc: Sequence[str | int], **given: str | None) -> list[dict[str, Any]]:
    """An item per required input that was not given, worded as pydantic words it."""
    return [
        error_item([*loc, f], "Field required", "missing") for f, v in given.items() if v is None
    ]


def validation_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's (pydantic's) validation errors without the `input`, `ctx` and `url` they carry.

    Pydantic's messages state the rule ("Input should be a valid string"); the rare one that
    quotes the input (a union tag) is replaced by its error type.
    """
    out = []
    for e in errors:
        msg, type_, value = str(e.get("msg", "")), str(e.get("type", "")), e.get("input")
        if isinstance(value, str | int | float) and str(value) and str(value) in msg:
            msg = f"invalid input ({type_})"
        out.append(error_item(e.get("loc", ()), msg, type_))
    return out


def unprocessable(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The 422 body: the first MAX_LISTED_ERRORS items, then how many more there are."""
    shown = errors[:MAX_LISTED_ERRORS]
    if len(errors) > len(shown):
        more = len(errors) - len(shown)
        shown.append(error_item(["body"], f"... and {more} more invalid inputs", "value_error"))
    return {"detail": shown}

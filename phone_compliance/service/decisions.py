"""The R10 decision as served: `Decision` and the `Evidence` behind it.

Gold is authoritative: a found pair carries Gold's own `can_send_sms` and `reason`; nothing is
re-derived here. A pair absent from Gold is `NOT_FOUND`. A `DecisionIndex` (`service.index`)
makes decisions; `decide` and `can_send_sms` over the default index are in `service.api`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from phone_compliance import schema
from phone_compliance.schema import (
    ALLOWED,
    CONSENT_WITHDRAWN,
    DELETED,
    NOT_CLIENT_SOURCED,
    NOT_FOUND,
    parse_file_name,
)

# The Gold fields a found pair carries, in GOLD_DECISION order (keys, decision and reason aside).
PAIR_FIELDS = schema.GOLD_PAIR_FIELDS

# Evidence roles: which Gold file column and which Gold date column back each part of R10.
ROLE_FIELDS = {
    "attributes": ("attributes_file", None),  # R8: phone_source and the other attributes
    "presence": ("presence_file", "latest_present_date"),  # R5: latest present evidence
    "deletion": ("deletion_file", "deleted_at"),  # R5-R7
    "consent": ("consent_file", "sms_consent_updated_at"),  # R9
}
# The evidence behind each reason (R10): a denial names the rule that failed first; ALLOWED
# rests on the client-sourced attributes, the latest presence and, when there is one, consent.
DECIDING_ROLES = {
    ALLOWED: ("attributes", "presence", "consent"),
    NOT_FOUND: (),
    NOT_CLIENT_SOURCED: ("attributes",),
    DELETED: ("deletion",),
    CONSENT_WITHDRAWN: ("consent",),
}


@lru_cache(maxsize=65536)
def file_date(file: str | None) -> dt.date | None:
    """The file date a client file name carries (SPEC §1), or None when the name has none."""
    if not file:
        return None
    parsed = parse_file_name(file.replace("\\", "/").rsplit("/", 1)[-1])
    return dt.date.fromisoformat(parsed.file_date) if parsed else None


@dataclass(frozen=True, slots=True)
class Evidence:
    """One source file behind a decision: its role, the file, the file's date and the Gold date."""

    role: str  # attributes | presence | deletion | consent
    file: str | None
    file_date: dt.date | None  # from the file name (SPEC §1)
    date: dt.date | None  # the Gold date this evidence set (latest_present_date, deleted_at, ...)
    deciding: bool  # True when this evidence is what the reason rests on (R10)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "role": self.role,
            "file": self.file,
            "file_date": _iso(self.file_date),
            "date": _iso(self.date),
            "deciding": self.deciding,
        }


class Decision(NamedTuple):
    """R10 for one pair: allowed, the reason, the pair's Gold fields and lineage, the Gold version.

    For `NOT_FOUND` every Gold field is None. Immutable (a NamedTuple: a frozen dataclass costs
    5 us to construct, a quarter of the lookup budget). Truth-testing a Decision is an error:
    say `decision.allowed`, so `if decide(...)` can never send to a denied number.
    """

    account_number: str  # normalized (R2)
    phone_number: str  # normalized E.164 (R3)
    allowed: bool
    reason: str  # ALLOWED | NOT_FOUND | NOT_CLIENT_SOURCED | DELETED | CONSENT_WITHDRAWN
    gold_version: int
    index_id: str
    phone_source: str | None = None
    has_sms_consent: bool | None = None
    sms_consent_updated_at: dt.date | None = None
    is_deleted: bool | None = None
    delete_type: str | None = None
    deleted_at: dt.date | None = None
    phone_type: str | None = None
    phone_status: str | None = None
    phone_technology: str | None = None
    quality_score: int | None = None
    attributes_file: str | None = None
    presence_file: str | None = None
    latest_present_date: dt.date | None = None
    deletion_file: str | None = None
    consent_file: str | None = None
    content_hash: str | None = None
    # Asked as of a date (R14): that date, and the interval [valid_from, valid_to) the answer
    # stood over (valid_to None: it still stands).
    as_of: dt.date | None = None
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None

    def __bool__(self) -> bool:
        raise TypeError("a Decision has no truth value; use decision.allowed")

    @property
    def can_send_sms(self) -> bool:
        """R10's answer; the same as `allowed`."""
        return self.allowed

    @property
    def found(self) -> bool:
        """Whether Gold holds the pair."""
        return self.reason != NOT_FOUND

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        """The source files (and dates) behind the pair's Gold row, deciding ones flagged (R12)."""
        if not self.found:
            return ()
        deciding = DECIDING_ROLES.get(self.reason, ())
        out = []
        for role, (file_field, date_field) in ROLE_FIELDS.items():
            file = getattr(self, file_field)
            date = getattr(self, date_field) if date_field else None
            if file is None and date is None:
                continue
            out.append(Evidence(role, file, file_date(file), date, role in deciding))
        return tuple(out)

    @property
    def deciding_evidence(self) -> tuple[Evidence, ...]:
        """Only the evidence the reason rests on."""
        return tuple(e for e in self.evidence if e.deciding)

    def pair_fields(self) -> dict[str, Any] | None:
        """The pair's Gold fields (JSON-ready), or None when Gold does not hold the pair."""
        if not self.found:
            return None
        out: dict[str, Any] = {}
        for name in PAIR_FIELDS:
            value = getattr(self, name)
            out[name] = _iso(value) if isinstance(value, dt.date) else value
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as the HTTP API and `check --json` return it."""
        return {
            "account_number": self.account_number,
            "phone_number": self.phone_number,
            "can_send_sms": self.allowed,
            "reason": self.reason,
            "gold_version": self.gold_version,
            "index_id": self.index_id,
            "pair": self.pair_fields(),
            "evidence": [e.to_dict() for e in self.evidence],
            **(self._interval() if self.as_of is not None else {}),
        }

    def _interval(self) -> dict[str, Any]:
        return {
            "as_of": _iso(self.as_of),
            "valid_from": _iso(self.valid_from),
            "valid_to": _iso(self.valid_to),
        }

    def explain(self) -> str:
        """A few lines a compliance officer can read: the answer, why, and from which files."""
        verdict = "may be sent" if self.allowed else "must NOT be sent"
        when = f" as of {_iso(self.as_of)}" if self.as_of is not None else ""
        lines = [
            f"SMS to {self.phone_number} on account {self.account_number}{when} {verdict}: "
            f"{self.reason}",
        ]
        if self.as_of is not None and self.found:
            until = _iso(self.valid_to) or "now"
            lines.append(
                f"  (R14: from the files dated on or before {_iso(self.as_of)}; this decision "
                f"stood from {_iso(self.valid_from)} until {until})"
            )
        if not self.found and self.as_of is not None:
            lines.append(
                f"  No file dated on or before {_iso(self.as_of)} holds evidence of this pair "
                "(R14, R10: NOT_FOUND)."
            )
        elif not self.found:
            lines.append("  Gold holds no such (account, phone) pair (R10: NOT_FOUND).")
        else:
            consent = {True: "Y", False: "N", None: "none on record (implicit)"}[
                self.has_sms_consent
            ]
            lines.append(
                f"  phone_source={self.phone_source}  is_deleted={self.is_deleted}"
                f"  has_sms_consent={consent}"
            )
            if self.is_deleted:
                lines.append(f"  deleted: {self.delete_type} on {_iso(self.deleted_at)}")
            if self.has_sms_consent is not None:
                lines.append(f"  consent updated at {_iso(self.sms_consent_updated_at)}")
            lines.append(
                f"  type={self.phone_type} status={self.phone_status}"
                f" technology={self.phone_technology} quality={self.quality_score}"
            )
            lines.append("  evidence (* = deciding):")
            for e in self.evidence:
                mark = "*" if e.deciding else " "
                when = f" date {_iso(e.date)}" if e.date else ""
                lines.append(
                    f"   {mark} {e.role:<10} {e.file or '-'}"
                    f" (file date {_iso(e.file_date) or '?'}){when}"
                )
        lines.append(f"  Gold version {self.gold_version} (index {self.index_id})")
        return "\n".join(lines)


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None

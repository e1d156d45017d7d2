"""The wire models: OpenAPI documentation and request validation.

Requests are validated through `PairIn` / `BatchIn`; responses are built as plain JSON for speed,
and the `...Out` models document their shape.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from phone_compliance.schema import DECISION_REASONS

MAX_BATCH = 10_000  # pairs in one POST /v1/sms-permission:batch

EXAMPLE_PAIR = {"account": "1234567890123456", "phone": "(212) 555-0123"}
Reason = Literal["ALLOWED", "NOT_FOUND", "NOT_CLIENT_SOURCED", "DELETED", "CONSENT_WITHDRAWN"]
assert set(Reason.__args__) == set(DECISION_REASONS)  # type: ignore[attr-defined]


class EvidenceOut(BaseModel):
    role: Literal["attributes", "presence", "deletion", "consent"]
    file: str | None = Field(description="Client file whose evidence set this part (R12)")
    file_date: dt.date | None = Field(description="The file date its name carries (SPEC §1)")
    date: dt.date | None = Field(description="The Gold date this evidence set")
    deciding: bool = Field(description="Whether the reason rests on this evidence")


class PairOut(BaseModel):
    phone_source: str | None
    has_sms_consent: bool | None
    sms_consent_updated_at: dt.date | None
    is_deleted: bool | None
    delete_type: str | None
    deleted_at: dt.date | None
    phone_type: str | None
    phone_status: str | None
    phone_technology: str | None
    quality_score: int | None
    attributes_file: str | None
    presence_file: str | None
    latest_present_date: dt.date | None
    deletion_file: str | None
    consent_file: str | None
    content_hash: str | None


class DecisionOut(BaseModel):
    account_number: str = Field(description="Normalized (R2)")
    phone_number: str = Field(description="Normalized to E.164 (R3)")
    can_send_sms: bool
    reason: Reason
    gold_version: int = Field(description="Gold Delta version the index was built from")
    index_id: str
    pair: PairOut | None = Field(description="The pair's Gold row; null when NOT_FOUND")
    evidence: list[EvidenceOut]
    as_of: dt.date | None = Field(
        None, description="Asked as of this day: only files dated on or before it count (R14)"
    )
    valid_from: dt.date | None = Field(
        None, description="As of a day: the first file date the same decision stood on"
    )
    valid_to: dt.date | None = Field(
        None, description="As of a day: the file date it stopped standing on (null: it stands)"
    )


class PairIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_PAIR]})

    account: str = Field(description="16-digit account number (R2)")
    phone: str = Field(description="US phone number in any common format (R3)")
    as_of: str | None = Field(
        None,
        description="YYYY-MM-DD: the decision the files dated on or before it give (R14); "
        "default: now",
        json_schema_extra={"format": "date"},
    )


class BatchIn(BaseModel):
    pairs: list[PairIn] = Field(max_length=MAX_BATCH, description="At most 10,000 pairs")


class BatchOut(BaseModel):
    gold_version: int
    index_id: str
    count: int
    decisions: list[DecisionOut] = Field(description="One per input pair, in input order")


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(description="Where: e.g. ['body', 'pairs', 3, 'phone']")
    msg: str = Field(description="Which rule the input breaks; never the input itself")
    type: str


class ValidationErrorOut(BaseModel):
    detail: list[ErrorItem]


class MessageOut(BaseModel):
    detail: str


class IndexOut(BaseModel):
    index_id: str
    gold_version: int
    built_at: str | None
    pairs: int
    reasons: dict[str, int] | None
    path: str


class ReadyOut(BaseModel):
    status: str
    index_id: str | None = None
    gold_version: int | None = None
    pairs: int | None = None
    detail: str | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": MessageOut, "description": "Missing or invalid API key"},
    413: {"model": MessageOut, "description": "Request body over the server's limit"},
    422: {"model": ValidationErrorOut, "description": "An input cannot be normalized (R11)"},
    503: {"model": MessageOut, "description": "No decision index is loaded yet"},
}

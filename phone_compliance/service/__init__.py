"""The decision service: 'may I text this number on this account?' answered from Gold (R10-R12).

Imports no pyspark and no dagster (it starts in milliseconds, without a JVM); reading an index
needs numpy only. Building one (`build_index`) needs pyarrow; the HTTP app
(`phone_compliance.service.http`) needs FastAPI.

    from phone_compliance.service import can_send_sms, decide
    can_send_sms("1234567890123456", "(212) 555-0123")  # -> bool (R10)
    decide("1234567890123456", "+1 212 555 0123").reason  # -> "ALLOWED" | "NOT_FOUND" | ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from phone_compliance.keys import InvalidKey
from phone_compliance.service.decisions import Decision, Evidence, can_send_sms, decide
from phone_compliance.service.index import (
    DecisionIndex,
    IndexFormatError,
    IndexNotFound,
    LiveIndex,
    default_index_dir,
    live_index,
)

if TYPE_CHECKING:
    from phone_compliance.service.build import IndexBuildError, build_index

__all__ = [
    "Decision",
    "DecisionIndex",
    "Evidence",
    "IndexBuildError",
    "IndexFormatError",
    "IndexNotFound",
    "InvalidKey",
    "LiveIndex",
    "build_index",
    "can_send_sms",
    "decide",
    "default_index_dir",
    "live_index",
]


def __getattr__(name: str) -> Any:
    # The builder pulls in pyarrow; load it only when asked for.
    if name in ("build_index", "IndexBuildError"):
        from phone_compliance.service import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The decision service: 'may I text this number on this account?' answered from Gold (R10-R12).

Imports no pyspark and no dagster (it starts in milliseconds, without a JVM); reading an index
needs numpy only. Building one (`build_index`) needs pyarrow, imported when a build runs; the
HTTP app (`phone_compliance.service.http`) needs FastAPI and is not imported here.

    from phone_compliance.service import can_send_sms, decide
    can_send_sms("1234567890123456", "(212) 555-0123")  # -> bool (R10)
    decide("1234567890123456", "+1 212 555 0123").reason  # -> "ALLOWED" | "NOT_FOUND" | ...

Modules, each importing only those before it: `decisions` (Decision, Evidence), `index` (the
memory-mapped index), `api` (decide, can_send_sms), `build`, `batch`, `verify`, `http`.
"""

from __future__ import annotations

from phone_compliance.keys import InvalidKey
from phone_compliance.service.api import can_send_sms, decide
from phone_compliance.service.build import IndexBuildError, build_index
from phone_compliance.service.decisions import Decision, Evidence
from phone_compliance.service.index import (
    DecisionIndex,
    IndexFormatError,
    IndexNotFound,
    LiveIndex,
    default_index_dir,
    live_index,
)

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

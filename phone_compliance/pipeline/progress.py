"""Which ledger version each Silver and Gold table reflects, and what a run must do to it
(transforms/plan.py). Read from the tables' Delta logs with delta-rs: no Spark, so a run with
nothing new never starts one."""

from __future__ import annotations

from collections.abc import Iterable

from phone_compliance.ingest.ledger import evidence_at, ledger_version
from phone_compliance.lakehouse import delta_log
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.transforms.plan import UNCHANGED, Plan, plan


def reflected_version(lakehouse: Locations, uri: str) -> int | None:
    """The ledger version the table at `uri` reflects; None when unknown (no table yet, or one
    written before tables recorded it)."""
    return delta_log.last_commit_note(lakehouse, uri, "ledger_version").get("ledger_version")


def plan_for(
    lakehouse: Locations, uri: str, target: int | None, full_refresh: bool = False
) -> Plan:
    """How the table at `uri` catches up with the evidence of ledger version `target` (None: no
    file ingested yet, so nothing to do)."""
    if target is None:
        return Plan(UNCHANGED, "no file ingested yet", None)
    now = evidence_at(lakehouse, target)
    if now is None:
        raise RuntimeError(
            f"ledger version {target} is no longer in its Delta log; run with full_refresh"
        )
    version = reflected_version(lakehouse, uri)
    reflected = evidence_at(lakehouse, version) if version is not None else None
    why = (
        "first build"
        if version is None
        else f"ledger version {version} it reflects is no longer in the ledger's Delta log"
    )
    return plan(reflected, now, target, full_refresh, why)


def lagging(lakehouse: Locations, uris: Iterable[str]) -> list[str]:
    """The tables among `uris` whose evidence is not the ledger's now (e.g. after a run that
    stopped before them, or a blocking check that held them back)."""
    target = ledger_version(lakehouse)
    return [uri for uri in uris if plan_for(lakehouse, uri, target).writes]

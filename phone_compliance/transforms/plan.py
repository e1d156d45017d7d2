"""What a Silver or Gold table must recompute in a run (R12: any split of the files into runs
gives the Gold of one run over all of them).

Each such table records, in the note of its latest Delta commit, the ledger version whose
evidence it reflects. A run compares the file versions in force then and now: new versions are
applied as an increment; a version that replaced one already applied (a changed re-delivery)
removes evidence, which max/min states cannot take back, so the table is rebuilt from Bronze;
nothing new, nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from phone_compliance import schema
from phone_compliance.ingest.ledger import Version, same_version, snapshot_parts

FULL = "full"
INCREMENTAL = "incremental"
UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Plan:
    """How one table catches up with the evidence of `ledger_version`, and why."""

    mode: str
    reason: str
    ledger_version: int | None
    # The file versions whose rows are applied: the new ones (incremental) or all (full).
    files: tuple[str, ...] = ()
    # R6's snapshots at `ledger_version`: absences depend on every snapshot date.
    snapshots: Mapping[date, Sequence[str]] = field(default_factory=dict)
    # A new snapshot judges every pair's presence: the whole book is re-decided.
    snapshots_changed: bool = False

    @property
    def writes(self) -> bool:
        return self.mode != UNCHANGED

    def note(self, **more: Any) -> dict[str, Any]:
        """What the table's commit records: the ledger version it now reflects, and how."""
        return {"ledger_version": self.ledger_version, "mode": self.mode, **more}


def plan(
    reflected: Mapping[str, Version] | None,
    now: Mapping[str, Version],
    ledger_version: int | None,
    full_refresh: bool = False,
    why_full: str = "no record of what the table reflects",
) -> Plan:
    """The plan for a table reflecting the versions in force `reflected` (None: unknown, e.g. a
    first build) to reflect `now` (each name's version in force, readable ones only)."""
    snapshots = snapshot_parts(now)
    everything = tuple(sorted(now))

    def full(reason: str) -> Plan:
        return Plan(FULL, reason, ledger_version, everything, snapshots, snapshots_changed=True)

    if full_refresh:
        return full("full refresh requested")
    if reflected is None:
        return full(why_full)
    replaced = sorted(
        name for name, v in reflected.items() if name not in now or not same_version(v, now[name])
    )
    if replaced:
        shown = ", ".join(replaced[:3]) + (f" and {len(replaced) - 3} more" if replaced[3:] else "")
        return full(f"re-delivered with new content: {shown}")
    added = tuple(sorted(name for name in now if name not in reflected))
    if not added:
        return Plan(UNCHANGED, "no new file version", ledger_version, (), snapshots)
    new_snapshot = any(now[name]["family"] == schema.SNAPSHOT.name for name in added)
    reason = f"{len(added)} new file version(s)" + (" incl. a snapshot" if new_snapshot else "")
    return Plan(INCREMENTAL, reason, ledger_version, added, snapshots, new_snapshot)

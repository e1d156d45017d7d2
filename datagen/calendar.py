"""When files arrive: snapshot, change-record and enrollment dates and file timestamps (SPEC §1).

Days are plain integers (days since 1970-01-01) so the world can compare them in numpy.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

INF = np.int32(2**30)  # "never": later than every real day
EPOCH = dt.date(1970, 1, 1)
REFERENCE_DAYS = (dt.date(2024, 12, 31) - dt.date(2019, 1, 1)).days + 1  # the reference shape
# Reference cadence over 2019-2024: 60 of 72 monthly snapshots, ~250 weekly change files,
# ~100 enrollment files.
SNAPSHOT_MONTH_SHARE = 60 / 72
CHANGE_WEEK_SHARE = 250 / 313
ENROLLMENT_FILES_PER_DAY = 100 / REFERENCE_DAYS
CHANGE_WINDOW = 7  # a change record is dated within the 7 days before its file date


def to_day(value: dt.date | str) -> int:
    """Days since 1970-01-01 of a date or an ISO date string."""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value)
    return (value - EPOCH).days


def to_date(day: int) -> dt.date:
    """The date of a day number."""
    return EPOCH + dt.timedelta(days=int(day))


def iso(day: int) -> str:
    """YYYY-MM-DD of a day number."""
    return to_date(day).isoformat()


@dataclass(frozen=True)
class Calendar:
    """The file dates of one dataset, and the days on which a change record can be dated."""

    start: int
    end: int
    snapshot_days: np.ndarray  # sorted int32
    snapshot_ts: tuple[str, ...]
    change_days: np.ndarray  # SUPPLFWD file dates, sorted
    change_ts: tuple[str, ...]
    enroll_days: np.ndarray  # ENRLMT file dates, sorted; the last one is `end`
    enroll_ts: tuple[str, ...]
    covered: np.ndarray  # days inside some SUPPLFWD window that are not snapshot days

    @property
    def last_snapshot(self) -> int:
        """Date of the last snapshot."""
        return int(self.snapshot_days[-1])

    def pick_covered(
        self, rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """A random covered day in [lo, hi) per element, and whether one existed."""
        lo = np.asarray(lo)
        hi = np.asarray(hi)
        i_lo = np.searchsorted(self.covered, lo, side="left")
        i_hi = np.searchsorted(self.covered, hi, side="left")
        ok = i_hi > i_lo
        span = np.where(ok, i_hi - i_lo, 1)
        idx = i_lo + (rng.random(lo.shape) * span).astype(np.int64)
        idx = np.minimum(idx, len(self.covered) - 1)
        return np.where(ok, self.covered[idx], INF).astype(np.int32), ok

    def next_snapshot_after(self, day: np.ndarray) -> np.ndarray:
        """The first snapshot date strictly after each day (INF when none)."""
        i = np.searchsorted(self.snapshot_days, day, side="right")
        padded = np.append(self.snapshot_days, INF)
        return padded[i]

    def change_file_of(self, record_day: np.ndarray) -> np.ndarray:
        """Index of the SUPPLFWD file whose window holds each record day."""
        i = np.searchsorted(self.change_days, record_day, side="right")
        if np.any(i >= len(self.change_days)) or np.any(
            self.change_days[np.minimum(i, len(self.change_days) - 1)] - record_day > CHANGE_WINDOW
        ):
            raise ValueError("a change record falls outside every SUPPLFWD window")
        return i

    def enroll_file_of(self, enroll_day: np.ndarray) -> np.ndarray:
        """Index of the first ENRLMT file dated on or after each enrollment day."""
        i = np.searchsorted(self.enroll_days, enroll_day, side="left")
        if np.any(i >= len(self.enroll_days)):
            raise ValueError("an enrollment falls after the last ENRLMT file")
        return i


def _ts(rng: np.random.Generator, day: int, hour_lo: int, hour_hi: int) -> str:
    """A 17-digit file timestamp on `day` between the given hours (SPEC §1)."""
    d = to_date(day)
    h = int(rng.integers(hour_lo, hour_hi))
    m, s, ms = (int(x) for x in (rng.integers(0, 60), rng.integers(0, 60), rng.integers(0, 1000)))
    return f"{d:%Y%m%d}{h:02d}{m:02d}{s:02d}{ms:03d}"


def _first_weekday(d: dt.date) -> dt.date:
    """The first Monday-Friday on or after d: snapshots are cut on business days."""
    while d.weekday() >= 5:
        d += dt.timedelta(days=1)
    return d


def build_calendar(start: str, end: str, seed: int) -> Calendar:
    """The file dates over [start, end] in the reference cadence, fixed by the seed."""
    rng = np.random.default_rng([seed, 101])
    d0, d1 = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    if (d1 - d0).days < 180:
        raise ValueError("the date range must cover at least 180 days")
    s0, s1 = to_day(d0), to_day(d1)

    # Monthly snapshots; about one month in six is missing, never the first or the last,
    # never two in a row, so gaps stay short.
    months = []
    y, m = d0.year, d0.month
    while dt.date(y, m, 1) <= d1:
        day = _first_weekday(max(dt.date(y, m, 1), d0))
        if day <= d1:
            months.append(to_day(day))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    n_drop = round(len(months) * (1 - SNAPSHOT_MONTH_SHARE))
    droppable = list(range(2, len(months) - 1, 2))  # every other month: no two gaps in a row
    drop = set(rng.choice(droppable, size=min(n_drop, len(droppable)), replace=False).tolist())
    snapshot_days = np.array([d for i, d in enumerate(months) if i not in drop], dtype=np.int32)

    # Weekly change files on Mondays, about one week in five missing (never the last).
    first_monday = d0 + dt.timedelta(days=(7 - d0.weekday()) % 7 + CHANGE_WINDOW)
    weeks = np.arange(to_day(first_monday), s1 + 1, 7, dtype=np.int32)
    keep = rng.random(len(weeks)) < CHANGE_WEEK_SHARE
    keep[-1] = True
    change_days = weeks[keep]

    # Enrollment files at irregular dates; the last one on `end` so every enrollment is sent.
    n_enroll = max(3, round(ENROLLMENT_FILES_PER_DAY * (s1 - s0 + 1)))
    inner = rng.choice(np.arange(s0 + 3, s1), size=n_enroll - 1, replace=False)
    enroll_days = np.sort(np.append(inner, s1)).astype(np.int32)

    windows = (change_days[:, None] - np.arange(1, CHANGE_WINDOW + 1)[None, :]).ravel()
    covered = np.unique(windows[(windows >= s0) & (windows <= s1)])
    covered = covered[~np.isin(covered, snapshot_days)].astype(np.int32)

    return Calendar(
        start=s0,
        end=s1,
        snapshot_days=snapshot_days,
        snapshot_ts=tuple(_ts(rng, d, 1, 4) for d in snapshot_days),
        change_days=change_days,
        change_ts=tuple(_ts(rng, d, 4, 7) for d in change_days),
        enroll_days=enroll_days,
        enroll_ts=tuple(_ts(rng, d, 20, 23) for d in enroll_days),
        covered=covered,
    )

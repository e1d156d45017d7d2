"""The serving index: Gold `phone_consent` as memory-mapped numpy arrays, one directory per build.

Layout (docs/serving-index.md says why)::

    <index_dir>/
      CURRENT                         # the published build's name; replaced atomically
      v<gold_version>-<stamp>/        # one immutable build
        manifest.json                 # Gold version, pair count, dictionaries, row layout
        keys.npy    uint64[n]         # sorted (account << 10) | (phone_digits >> 24)
        low.npy     uint32[n]         # phone_digits & 0xFFFFFF: with keys.npy, the exact pair
        decision.npy uint8[n]         # index into DECISION_REASONS (0 = ALLOWED) from Gold
        rows.npy    record[n]         # packed per-pair Gold fields, dictionary codes for strings
        history/                      # the decision history (R14), when built with one:
          manifest.json, keys.npy, decision.npy, rows.npy   # as above, one row per interval
          sub.npy   uint64[n]         # (phone_digits & 0xFFFFFF) << 32 | valid_from - INT32_MIN

Account numbers (16 digits < 2**54) and phone digits (10 digits < 2**34) make an exact 88-bit
key; the sorted 64-bit prefix is found with a binary search and the low 24 phone bits confirm it.
Readers use numpy only (no pyarrow, no Spark): opening an index maps four files and reads a
small JSON manifest. The history is sorted by key, then `sub`: a pair's intervals are
consecutive and in date order, so the interval holding a day is one binary search away.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import mmap
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from phone_compliance import schema
from phone_compliance.keys import normalize_account, normalize_as_of, normalize_phone
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.schema import DECISION_REASONS, NOT_FOUND
from phone_compliance.service.decisions import Decision
from phone_compliance.settings import Settings

log = logging.getLogger(__name__)

FORMAT = "phone-compliance-decision-index"
FORMAT_VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
ARRAY_FILES = ("keys.npy", "low.npy", "decision.npy", "rows.npy")

ACCOUNT_SHIFT = 10  # phone digits < 2**34: their top 10 bits go below the account in the key
PHONE_LOW_BITS = 24
PHONE_LOW_MASK = (1 << PHONE_LOW_BITS) - 1

NULL_DATE = np.iinfo(np.int32).min  # days since 1970-01-01; this value means NULL
HISTORY_DIR = "history"
VALID_FROM = "valid_from"
_DAY_BITS = 32
_DAY_MASK = (1 << _DAY_BITS) - 1
NULL_BOOL = -1  # tri-state booleans: -1 NULL, 0 FALSE, 1 TRUE

# Row fields and how each is encoded; the builder writes them in this order.
DICT_FIELDS = {  # string column -> dictionary name (index 0 of every dictionary is NULL)
    "phone_source": "phone_source",
    "delete_type": "delete_type",
    "phone_type": "phone_type",
    "phone_status": "phone_status",
    "phone_technology": "phone_technology",
    "attributes_file": "file",
    "presence_file": "file",
    "deletion_file": "file",
    "consent_file": "file",
}
BOOL_FIELDS = ("has_sms_consent", "is_deleted")
DATE_FIELDS = ("sms_consent_updated_at", "deleted_at", "latest_present_date")
INT_FIELDS = ("quality_score",)
HASH_FIELD = "content_hash"
ROW_FIELDS = schema.GOLD_PAIR_FIELDS

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_REASON_CODE = {reason: code for code, reason in enumerate(DECISION_REASONS)}
_U64 = np.uint64


def history_sub(low: np.ndarray, days: np.ndarray) -> np.ndarray:
    """The history's second sort key: the low phone bits, then the day (int32 days since 1970,
    offset to be unsigned), in one uint64."""
    offset = days.astype(np.int64) - int(NULL_DATE)
    return (low.astype(_U64) << _U64(_DAY_BITS)) | offset.astype(_U64)


def _day_of(sub: int) -> dt.date:
    return dt.date.fromordinal(_EPOCH_ORDINAL + (sub & _DAY_MASK) + int(NULL_DATE))


class IndexNotFound(FileNotFoundError):
    """No published index at the location asked for."""


class IndexFormatError(ValueError):
    """A directory that is not a decision index this code can read."""


# --- Where the index lives ------------------------------------------------------------------------


def default_index_dir() -> Path:
    """The deployment's serving index folder (`Locations.index_dir`: PHONE_COMPLIANCE_INDEX, else
    beside a local warehouse), the same folder the pipeline publishes to, from any directory."""
    return Locations(Settings.from_env()).index_dir


def new_index_id(gold_version: int) -> str:
    """A fresh build name: v<gold_version>-<UTC stamp>-<pid>."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"v{int(gold_version)}-{stamp}-{os.getpid()}"


def read_current(index_dir: str | Path) -> str | None:
    """The published build's name, or None when nothing is published."""
    try:
        name = (Path(index_dir) / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    if not name or "/" in name or name.startswith("."):
        raise IndexFormatError(f"{index_dir}/{CURRENT} holds {name!r}, not a build name")
    return name


def publish(index_dir: str | Path, index_id: str) -> None:
    """Point CURRENT at a finished build, atomically (write a temp file, fsync, rename)."""
    index_dir = Path(index_dir)
    if not (index_dir / index_id / MANIFEST).is_file():
        raise IndexFormatError(f"{index_dir / index_id} is not a finished build")
    tmp = index_dir / f".{CURRENT}.{os.getpid()}.{threading.get_ident()}"
    with open(tmp, "w") as f:
        f.write(index_id + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, index_dir / CURRENT)
    fsync_dir(index_dir)


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- Reading one build ---------------------------------------------------------------------


def _load(path: Path) -> np.ndarray:
    # A plain ndarray view over the map: np.memmap's subclass hooks cost time on every access.
    return np.load(path, mmap_mode="r").view(np.ndarray)


class DecisionIndex:
    """One immutable build, memory-mapped: `decide`, `can_send_sms` and vectorized `lookup`,
    now or as of a date (R14, from the build's `history`).

    `DecisionIndex(path)` opens a build directory, or the build CURRENT names when `path` is an
    index directory. Thread-safe (read-only).
    """

    _SECOND = "low.npy"  # what tells pairs of one 64-bit key apart
    _COUNT = "pairs"  # the manifest's row count

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not (path / MANIFEST).is_file():
            current = read_current(path)
            if current is None:
                raise IndexNotFound(f"no decision index published at {path} (no {CURRENT} file)")
            path = path / current
        self.path = path
        try:
            self.manifest: dict[str, Any] = json.loads((path / MANIFEST).read_text())
        except FileNotFoundError as e:
            raise IndexNotFound(f"decision index build {path} is missing its manifest") from e
        if self.manifest.get("format") != FORMAT or self.manifest.get("format_version") != 1:
            raise IndexFormatError(f"{path} is not a {FORMAT} v{FORMAT_VERSION} build")
        self.gold_version: int = int(self.manifest["gold_version"])
        self.index_id: str = self.manifest["index_id"]
        self.n: int = int(self.manifest[self._COUNT])
        self.max_run: int = int(self.manifest["max_key_run"])
        self.keys = _load(path / "keys.npy")
        self.low = _load(path / self._SECOND)
        self.decision = _load(path / "decision.npy")
        self.rows = _load(path / "rows.npy")
        if not (len(self.keys) == len(self.low) == len(self.decision) == len(self.rows) == self.n):
            raise IndexFormatError(f"{path}: array lengths disagree with the manifest")
        if tuple(self.rows.dtype.names or ()) != tuple(self.manifest["row_fields"]):
            raise IndexFormatError(f"{path}: row layout disagrees with the manifest")
        self.dictionaries: dict[str, list[str | None]] = self.manifest["dictionaries"]
        self.hash_encoding: str = self.manifest["content_hash"]["encoding"]
        self.hash_width: int = int(self.manifest["content_hash"]["width"])
        qs = self.rows.dtype.fields["quality_score"][0] if self.n else np.dtype(np.int32)
        self._int_null = int(np.iinfo(qs).min)
        self._prepare_hot_path()
        history = path / HISTORY_DIR
        self.history = HistoryIndex(history) if (history / MANIFEST).is_file() else None

    def _prepare_hot_path(self) -> None:
        d = self.dictionaries
        self._src, self._dtype_, self._type = d["phone_source"], d["delete_type"], d["phone_type"]
        self._status, self._tech, self._file = d["phone_status"], d["phone_technology"], d["file"]
        self._search = self.keys.searchsorted
        self._keys_item = self.keys.item
        self._low_item = self.low.item
        self._decision_item = self.decision.item
        self._rows_item = self.rows.item
        has_hash = HASH_FIELD in (self.rows.dtype.names or ())
        self._hash_pos = self.rows.dtype.names.index(HASH_FIELD) if has_hash else -1

    def __repr__(self) -> str:
        return f"DecisionIndex({str(self.path)!r}, gold_version={self.gold_version}, n={self.n})"

    # -- point lookups (the hot path: keep it lean) --

    def find(self, account: str, phone: str) -> int:
        """Row of a normalized pair (16-digit account, +1XXXXXXXXXX phone), or -1 when absent."""
        digits = int(phone[2:])
        key = (int(account) << ACCOUNT_SHIFT) | (digits >> PHONE_LOW_BITS)
        low = digits & PHONE_LOW_MASK
        i = int(self._search(_U64(key)))
        n = self.n
        keys_item, low_item = self._keys_item, self._low_item
        while i < n and keys_item(i) == key:
            if low_item(i) == low:
                return i
            i += 1
        return -1

    def can_send_sms(
        self, account_number: str, phone_number: str, as_of: str | dt.date | None = None
    ) -> bool:
        """R10 from Gold (as of a date: R14); raises InvalidKey (R11) when an input cannot be
        normalized."""
        if as_of is not None:
            return self.decide(account_number, phone_number, as_of).allowed
        i = self.find(normalize_account(account_number), normalize_phone(phone_number))
        return i >= 0 and self._decision_item(i) == 0

    def decide(
        self, account_number: str, phone_number: str, as_of: str | dt.date | None = None
    ) -> Decision:
        """R10 with reason, Gold fields, lineage and Gold version; InvalidKey (R11) on bad input.

        With `as_of` (a date or `YYYY-MM-DD`), the decision the files dated on or before that day
        give (R14), with the interval it stood over; IndexNotFound when the build has no history.
        """
        account = normalize_account(account_number)
        phone = normalize_phone(phone_number)
        if as_of is not None:
            return self._decide_as_of(account, phone, normalize_as_of(as_of))
        i = self.find(account, phone)
        if i < 0:
            return Decision(account, phone, False, NOT_FOUND, self.gold_version, self.index_id)
        return self._decision_at(i, account, phone)

    def _decide_as_of(self, account: str, phone: str, day: dt.date) -> Decision:
        history = self.require_history()
        i = history.find_as_of(account, phone, day)
        if i < 0:
            return Decision(
                account, phone, False, NOT_FOUND, self.gold_version, self.index_id, as_of=day
            )
        valid_from, valid_to = history.interval(i)
        return history._decision_at(i, account, phone)._replace(
            as_of=day, valid_from=valid_from, valid_to=valid_to
        )

    def require_history(self) -> HistoryIndex:
        """The build's decision history (R14), or IndexNotFound saying the build has none."""
        if self.history is None:
            raise IndexNotFound(
                f"decision index build {self.path} has no decision history: as-of answers "
                "(R14) need an index built with one"
            )
        return self.history

    def _decision_at(self, i: int, account: str, phone: str) -> Decision:
        code = self._decision_item(i)
        (src, consent, consent_at, deleted, dtype_, deleted_at, ptype, status, tech, quality,
         f_attr, f_pres, present_at, f_del, f_cons, *rest) = self._rows_item(i)  # fmt: skip
        files = self._file
        return Decision(
            account,
            phone,
            code == 0,
            DECISION_REASONS[code],
            self.gold_version,
            self.index_id,
            self._src[src],
            None if consent < 0 else consent == 1,
            _date(consent_at),
            None if deleted < 0 else deleted == 1,
            self._dtype_[dtype_],
            _date(deleted_at),
            self._type[ptype],
            self._status[status],
            self._tech[tech],
            None if quality == self._int_null else quality,
            files[f_attr],
            files[f_pres],
            _date(present_at),
            files[f_del],
            files[f_cons],
            self._hash(rest[0]) if rest else None,
        )

    def _hash(self, raw: bytes) -> str | None:
        if self.hash_encoding == "hex":
            return raw.ljust(self.hash_width, b"\0").hex()
        return raw.decode("utf-8") if raw else None

    # -- vectorized lookups (batch scrubbing) --

    def lookup(self, accounts: np.ndarray, phones: np.ndarray) -> np.ndarray:
        """Rows (int64, -1 when absent) of normalized pairs given as uint64 account numbers and
        uint64 10-digit phone numbers (E.164 without +1)."""
        accounts = np.asarray(accounts, dtype=np.uint64)
        phones = np.asarray(phones, dtype=np.uint64)
        key = (accounts << _U64(ACCOUNT_SHIFT)) | (phones >> _U64(PHONE_LOW_BITS))
        low = (phones & _U64(PHONE_LOW_MASK)).astype(np.uint32)
        rows = np.full(len(key), -1, dtype=np.int64)
        if self.n == 0 or len(key) == 0:
            return rows
        start = self.keys.searchsorted(key)
        for step in range(self.max_run):
            j = start + step
            inside = j < self.n
            jj = np.minimum(j, self.n - 1)
            same_key = inside & (self.keys[jj] == key)
            if not same_key.any():
                break
            hit = same_key & (self.low[jj] == low) & (rows < 0)
            rows[hit] = jj[hit]
        return rows

    def columns(self, rows: np.ndarray) -> dict[str, Any]:
        """Decision columns for `rows` (from `lookup`; -1 = NOT_FOUND) as numpy arrays.

        Strings come as dictionary codes with their dictionary (`<name>` codes, index 0 = NULL,
        plus `dictionaries`); dates as int32 days since 1970-01-01 with NULL_DATE; booleans as
        int8 with NULL_BOOL. `reason_code` indexes DECISION_REASONS.
        """
        found = rows >= 0
        safe = np.where(found, rows, 0)
        take = self.rows[safe] if self.n else np.zeros(len(rows), dtype=self.rows.dtype)
        reason = np.where(found, self.decision[safe] if self.n else 0, _REASON_CODE[NOT_FOUND])
        out: dict[str, Any] = {
            "found": found,
            "reason_code": reason.astype(np.uint8),
            "can_send_sms": reason == _REASON_CODE["ALLOWED"],
        }
        for name in ROW_FIELDS:
            if name not in (take.dtype.names or ()):
                continue
            col = np.array(take[name])
            if name in DICT_FIELDS:
                col = np.where(found, col, 0)
            elif name in BOOL_FIELDS:
                col = np.where(found, col, NULL_BOOL).astype(np.int8)
            elif name in DATE_FIELDS:
                col = np.where(found, col, NULL_DATE).astype(np.int32)
            elif name in INT_FIELDS:
                col = np.where(found, col, self._int_null)
            out[name] = col
        return out

    def warm(self) -> int:
        """Fault every page of the index into this process now (from the page cache, or the
        disk), so that no lookup pays a page fault later; returns the bytes touched. The
        pages are file-backed: shared with other processes and reclaimable by the kernel."""
        touched = 0
        for arr in (self.keys, self.low, self.decision, self.rows):
            if arr.nbytes:
                raw = arr.reshape(-1).view(np.uint8)
                int(raw[:: mmap.PAGESIZE].max())
                touched += arr.nbytes
        return touched + (self.history.warm() if self.history is not None else 0)

    def info(self) -> dict[str, Any]:
        """Manifest facts worth showing (Gold version, build time, pair counts)."""
        m = self.manifest
        return {
            "index_id": self.index_id,
            "gold_version": self.gold_version,
            "built_at": m.get("built_at"),
            "pairs": self.n,
            "reasons": m.get("reasons"),
            "path": str(self.path),
        }


class HistoryIndex(DecisionIndex):
    """The decision history of a build (R14): one row per interval, `low` holding `sub`
    (`history_sub`), so that a pair's intervals are consecutive and in date order."""

    _SECOND = "sub.npy"
    _COUNT = "intervals"

    def find_as_of(self, account: str, phone: str, day: dt.date) -> int:
        """Row of the interval of a normalized pair holding `day`, or -1 (NOT_FOUND then)."""
        digits = int(phone[2:])
        key = _U64((int(account) << ACCOUNT_SHIFT) | (digits >> PHONE_LOW_BITS))
        low = digits & PHONE_LOW_MASK
        start, end = int(self._search(key)), int(self._search(key, "right"))
        days = day.toordinal() - _EPOCH_ORDINAL - int(NULL_DATE)
        target = _U64((low << _DAY_BITS) | days)
        i = start + int(self.low[start:end].searchsorted(target, "right")) - 1
        if i < start or self._low_item(i) >> _DAY_BITS != low:
            return -1
        return i

    def interval(self, i: int) -> tuple[dt.date, dt.date | None]:
        """[valid_from, valid_to) of row `i`: valid_to is the next interval's start, if any."""
        sub = self._low_item(i)
        following = i + 1 < self.n and self._keys_item(i + 1) == self._keys_item(i)
        if following and self._low_item(i + 1) >> _DAY_BITS == sub >> _DAY_BITS:
            return _day_of(sub), _day_of(self._low_item(i + 1))
        return _day_of(sub), None

    def lookup_at(self, accounts: np.ndarray, phones: np.ndarray, day: dt.date) -> np.ndarray:
        """Rows (int64, -1 when absent) of the intervals holding `day`, for normalized pairs as
        `lookup` takes them."""
        accounts = np.asarray(accounts, dtype=np.uint64)
        phones = np.asarray(phones, dtype=np.uint64)
        key = (accounts << _U64(ACCOUNT_SHIFT)) | (phones >> _U64(PHONE_LOW_BITS))
        low = phones & _U64(PHONE_LOW_MASK)
        days = day.toordinal() - _EPOCH_ORDINAL - int(NULL_DATE)
        target = (low << _U64(_DAY_BITS)) | _U64(days)
        rows = np.full(len(key), -1, dtype=np.int64)
        if self.n == 0 or len(key) == 0:
            return rows
        start = self.keys.searchsorted(key)
        for step in range(self.max_run):  # the key's rows, in (low, valid_from) order
            j = start + step
            jj = np.minimum(j, self.n - 1)
            same_key = (j < self.n) & (self.keys[jj] == key)
            if not same_key.any():
                break
            sub = self.low[jj]
            hit = same_key & ((sub >> _U64(_DAY_BITS)) == low) & (sub <= target)
            rows[hit] = jj[hit]  # the last hit is the latest interval starting by `day`
        return rows


def _date(days: int) -> dt.date | None:
    return None if days == NULL_DATE else dt.date.fromordinal(_EPOCH_ORDINAL + days)


# --- Following CURRENT ---------------------------------------------------------------------------


class LiveIndex:
    """The index CURRENT names, swapped for a newer build when CURRENT changes.

    `current()` returns an open `DecisionIndex`; a caller keeps using the one it got for the whole
    request, so a swap never disturbs a request in flight (an old build stays mapped until its
    last user drops it). CURRENT is checked at most every `poll_interval` seconds: either inline
    in `current()` (the default) or by a background thread (`start()`), so the request path
    never touches the disk. With `warm`, a new build's pages are faulted in before the swap.
    """

    def __init__(
        self, index_dir: str | Path, poll_interval: float = 1.0, *, warm: bool = False
    ) -> None:
        self.index_dir = Path(index_dir)
        self.poll_interval = poll_interval
        self.warm = warm
        self._index: DecisionIndex | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._next_check = 0.0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.last_error: str | None = None

    @property
    def index(self) -> DecisionIndex | None:
        """The loaded build, or None (never blocks, never touches the disk)."""
        return self._index

    def current(self) -> DecisionIndex:
        """The loaded build, refreshed when due; IndexNotFound when nothing is published."""
        if self._thread is None and time.monotonic() >= self._next_check:
            self.refresh()
        index = self._index
        if index is None:
            raise IndexNotFound(
                f"no decision index published at {self.index_dir}"
                + (f" ({self.last_error})" if self.last_error else "")
            )
        return index

    def refresh(self) -> bool:
        """Check CURRENT now; load and swap in a newer build. True when a swap happened."""
        with self._lock:
            self._next_check = time.monotonic() + self.poll_interval
            try:
                st = os.stat(self.index_dir / CURRENT)
            except FileNotFoundError:
                self.last_error = f"no {CURRENT} file"
                return False
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp == self._stamp and self._index is not None:
                return False
            try:
                name = read_current(self.index_dir)
                if self._index is not None and name == self._index.index_id:
                    self._stamp = stamp
                    return False
                fresh = DecisionIndex(self.index_dir / name)
                if self.warm:  # before the swap: no request waits for a page fault
                    fresh.warm()
            except (OSError, ValueError, KeyError) as e:
                # Keep serving the build we have; try again at the next poll.
                self.last_error = f"could not open the published index: {e}"
                log.error("decision index %s: %s", self.index_dir, self.last_error)
                return False
            self._index = fresh
            self._stamp = stamp
            self.last_error = None
            log.info("decision index %s: now serving %s", self.index_dir, fresh.index_id)
            return True

    def start(self) -> None:
        """Load now and follow CURRENT from a daemon thread."""
        if self._thread is not None:
            return
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="index-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread (the loaded build stays available)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.refresh()
            except Exception:  # the watcher must survive anything the disk throws at it
                log.exception("decision index watcher")


_LIVE: dict[Path, LiveIndex] = {}
_LIVE_LOCK = threading.Lock()


def live_index(index_dir: str | Path | None = None) -> LiveIndex:
    """The process-wide LiveIndex for a directory (default: `default_index_dir()`)."""
    path = Path(index_dir) if index_dir is not None else default_index_dir()
    key = path.absolute()
    live = _LIVE.get(key)
    if live is None:
        with _LIVE_LOCK:
            live = _LIVE.setdefault(key, LiveIndex(path))
    return live

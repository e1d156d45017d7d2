"""Build a serving index from Gold exported as Parquet (pyarrow + numpy; no Spark).

Two passes keep memory flat at any book size (10^8 pairs on one node):

1. stream the Parquet in record batches, check each row (keys per R2/R3, a decision Gold can
   have), and append fixed-width encoded columns to scratch files (strings become dictionary
   codes; dates int32 days; booleans tri-state int8; the content hash raw bytes);
2. sort by the pair key (only the keys and the sort order are held in memory) and gather every
   column through the order into the final memory-mappable arrays, chunk by chunk.

The build is written beside the published one and made visible by renaming it into place and
then replacing CURRENT atomically; readers never see a half-built index.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from phone_compliance.keys import ACCOUNT_RE, NANP_RE
from phone_compliance.schema import (
    ALLOWED,
    DECISION_REASONS,
    GOLD_DECISION,
    NOT_FOUND,
    PAIR_KEY,
    names,
)
from phone_compliance.service.index import (
    ACCOUNT_SHIFT,
    BOOL_FIELDS,
    DATE_FIELDS,
    DICT_FIELDS,
    FORMAT,
    FORMAT_VERSION,
    HASH_FIELD,
    HISTORY_DIR,
    INT_FIELDS,
    MANIFEST,
    NULL_BOOL,
    NULL_DATE,
    PHONE_LOW_BITS,
    PHONE_LOW_MASK,
    ROW_FIELDS,
    VALID_FROM,
    fsync_dir,
    history_sub,
    new_index_id,
    publish,
    read_current,
)

# The same R2/R3 patterns the decision inputs are normalized with, applied to Gold's keys.
PHONE_E164_PATTERN = r"^\+1" + NANP_RE.pattern.lstrip("^")
ACCOUNT_PATTERN = ACCOUNT_RE.pattern
GATHER_CHUNK = 1 << 20  # rows per gather step in pass 2 (bounds its memory)
_HEX = np.full(256, 255, dtype=np.uint8)
_HEX[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10, dtype=np.uint8)
_HEX[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16, dtype=np.uint8)


class IndexBuildError(ValueError):
    """Gold cannot be served as it is (missing columns, malformed keys, duplicate pairs, a
    decision that contradicts its reason); nothing is published."""


def build_index(
    parquet_dir: str | Path,
    index_dir: str | Path,
    gold_version: int,
    *,
    history_dir: str | Path | None = None,
    keep: int = 3,
    batch_rows: int = 1 << 18,
    publish_build: bool = True,
) -> Path:
    """Build a serving index from Gold Parquet (GOLD_DECISION columns), publish it, return its path.

    `parquet_dir` is a directory of Parquet files (Spark's `_SUCCESS` and dot-files are ignored)
    or one file; `history_dir`, the same of Gold's decision history (DECISION_HISTORY columns),
    is built beside it for as-of answers (R14). The build lands in
    `index_dir/v<gold_version>-<stamp>/` and CURRENT is pointed at it; older builds beyond the
    newest `keep` are removed (a server still mapping one keeps its pages until it lets go).
    Raises IndexBuildError when Gold cannot be served.
    """
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    index_id = new_index_id(gold_version)
    tmp = index_dir / f".build-{index_id}"
    tmp.mkdir()
    try:
        _build_into(tmp, Path(parquet_dir), int(gold_version), index_id, batch_rows)
        if history_dir is not None:
            history = tmp / HISTORY_DIR
            history.mkdir()
            _build_into(history, Path(history_dir), int(gold_version), index_id, batch_rows, True)
        final = index_dir / index_id
        os.rename(tmp, final)
        fsync_dir(index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if publish_build:
        publish(index_dir, index_id)
        remove_old_builds(index_dir, keep=keep)
    return final


def index_intervals(build: str | Path) -> int:
    """How many decision-history intervals a build holds (0 without a history)."""
    manifest = Path(build) / HISTORY_DIR / MANIFEST
    return int(json.loads(manifest.read_text())["intervals"]) if manifest.is_file() else 0


def remove_old_builds(index_dir: str | Path, keep: int = 3) -> list[str]:
    """Delete all but the newest `keep` builds (never the published one) and stale scratch dirs."""
    index_dir = Path(index_dir)
    current = read_current(index_dir)
    builds = sorted(
        (p for p in index_dir.iterdir() if p.is_dir() and p.name.startswith("v")),
        key=lambda p: p.stat().st_mtime_ns,
        reverse=True,
    )
    removed = []
    for p in builds[max(keep, 1) :]:
        if p.name != current:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
    day_ago = time.time() - 86400
    for p in index_dir.glob(".build-*"):
        if p.stat().st_mtime < day_ago:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
    return removed


# --- pass 1: stream and encode -------------------------------------------------------------------


class _Scratch:
    """Append-only fixed-width column files for pass 1."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir()
        self.files: dict[str, BinaryIO] = {}
        self.dtypes: dict[str, np.dtype] = {}

    def append(self, name: str, values: np.ndarray) -> None:
        f = self.files.get(name)
        if f is None:
            f = self.files[name] = open(self.folder / f"{name}.bin", "wb")  # noqa: SIM115
            self.dtypes[name] = values.dtype
        f.write(np.ascontiguousarray(values, dtype=self.dtypes[name]).tobytes())

    def close(self) -> None:
        for f in self.files.values():
            f.close()

    def open(self, name: str, count: int) -> np.ndarray:
        if count == 0:
            return np.zeros(0, dtype=self.dtypes.get(name, np.uint8))
        return np.memmap(self.folder / f"{name}.bin", dtype=self.dtypes[name], mode="r")[:count]


class _Encoder:
    """Encodes record batches of Gold into fixed-width columns, checking them on the way."""

    def __init__(self, scratch: _Scratch, history: bool) -> None:
        self.scratch = scratch
        self.history = history
        self.dicts: dict[str, dict[str | None, int]] = {n: {None: 0} for n in DICT_FIELDS.values()}
        self.n = 0
        self.hash_bytes = 0
        self.hash_min_len: int | None = None
        self.hash_max_len = 0
        self.hash_all_hex = True
        self.int_min: dict[str, int] = {}
        self.int_max: dict[str, int] = {}
        self.reasons = dict.fromkeys(DECISION_REASONS, 0)

    def add(self, batch: Any) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if batch.num_rows == 0:
            return
        col = {name: batch.column(name) for name in batch.schema.names}
        account = col["account_number"].cast(pa.string())
        phone = col["phone_number"].cast(pa.string())
        for label, arr, pattern in (
            ("account_number", account, ACCOUNT_PATTERN),
            ("phone_number", phone, PHONE_E164_PATTERN),
        ):
            ok = pc.fill_null(pc.match_substring_regex(arr, pattern), False)
            if not pc.all(ok).as_py():
                bad = arr.filter(pc.invert(ok))[0].as_py()
                raise IndexBuildError(
                    f"Gold {label} {bad!r} is not normalized (R2/R3); refusing to serve it"
                )
        acct = pc.cast(account, pa.uint64()).to_numpy()
        digits = pc.cast(pc.utf8_slice_codeunits(phone, 2), pa.uint64()).to_numpy()
        key = (acct << np.uint64(ACCOUNT_SHIFT)) | (digits >> np.uint64(PHONE_LOW_BITS))
        self.scratch.append("key", key.astype(np.uint64))
        self.scratch.append("low", (digits & np.uint64(PHONE_LOW_MASK)).astype(np.uint32))
        self.scratch.append("decision", self._decision(col["reason"], col["can_send_sms"]))
        if self.history:
            valid_from = pc.fill_null(col[VALID_FROM].cast(pa.date32()).cast(pa.int32()), NULL_DATE)
            self.scratch.append(VALID_FROM, valid_from.to_numpy())

        for name in ROW_FIELDS:
            arr = col[name]
            if name in DICT_FIELDS:
                values = self._codes(arr, self.dicts[DICT_FIELDS[name]])
            elif name in BOOL_FIELDS:
                values = pc.fill_null(arr.cast(pa.int8()), NULL_BOOL).to_numpy()
            elif name in DATE_FIELDS:
                days = arr.cast(pa.date32()).cast(pa.int32())
                values = pc.fill_null(days, NULL_DATE).to_numpy()
            elif name in INT_FIELDS:
                ints = arr.cast(pa.int64())
                mm = pc.min_max(ints).as_py()
                if mm["min"] is not None:
                    self.int_min[name] = min(self.int_min.get(name, mm["min"]), mm["min"])
                    self.int_max[name] = max(self.int_max.get(name, mm["max"]), mm["max"])
                values = pc.fill_null(ints, np.iinfo(np.int64).min).to_numpy()
            else:  # HASH_FIELD
                self._hash(arr.cast(pa.string()))
                continue
            self.scratch.append(name, values)
        self.n += batch.num_rows

    def _decision(self, reason: Any, can_send: Any) -> np.ndarray:
        """Gold's R10 outcome as a code into DECISION_REASONS; Gold's word is final, but a row
        whose flag and reason disagree, or that has no decision, is refused (fail safe)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        reason = reason.cast(pa.string())
        codes = pc.index_in(reason, value_set=pa.array(DECISION_REASONS, pa.string()))
        bad = pc.fill_null(
            pc.or_(pc.is_null(codes), pc.equal(reason, NOT_FOUND)), True
        )  # NOT_FOUND is for pairs Gold lacks, never a Gold row
        flag = can_send.cast(pa.bool_())
        contradicts = pc.fill_null(pc.not_equal(flag, pc.equal(reason, ALLOWED)), True)
        wrong = pc.or_(bad, contradicts)
        if pc.any(wrong).as_py():
            i = pc.index(wrong, True).as_py()
            raise IndexBuildError(
                f"Gold row with reason {reason[i].as_py()!r} and can_send_sms "
                f"{flag[i].as_py()!r} is not a valid R10 decision; refusing to serve it"
            )
        out = pc.fill_null(codes, 0).to_numpy().astype(np.uint8)
        counts = np.bincount(out, minlength=len(DECISION_REASONS))
        for code, count in enumerate(counts):
            self.reasons[DECISION_REASONS[code]] += int(count)
        return out

    @staticmethod
    def _codes(arr: Any, mapping: dict[str | None, int]) -> np.ndarray:
        """Global dictionary codes (0 = NULL) of a string array, growing the dictionary."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if pa.types.is_dictionary(arr.type):  # read as a dictionary straight from Parquet
            encoded = arr.cast(pa.dictionary(arr.type.index_type, pa.string()))
        else:
            encoded = pc.dictionary_encode(arr.cast(pa.string()))
        local = [mapping.setdefault(s, len(mapping)) for s in encoded.dictionary.to_pylist()]
        remap = np.array([0, *local], dtype=np.uint32)
        idx = pc.fill_null(encoded.indices.cast("int64"), -1).to_numpy() + 1
        return remap[idx]

    def _hash(self, arr: Any) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pc.fill_null(arr, "").cast(pa.large_string())
        lengths = pc.binary_length(arr)
        mm = pc.min_max(lengths).as_py()
        self.hash_min_len = (
            mm["min"] if self.hash_min_len is None else min(self.hash_min_len, mm["min"])
        )
        self.hash_max_len = max(self.hash_max_len, mm["max"])
        if self.hash_all_hex:
            self.hash_all_hex = pc.all(pc.match_substring_regex(arr, "^[0-9a-f]*$")).as_py()
        _, offsets_buf, data_buf = arr.buffers()
        offsets = np.frombuffer(
            offsets_buf, dtype=np.int64, count=len(arr) + 1, offset=arr.offset * 8
        )
        data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]]
        self.scratch.append("hash_end", offsets[1:] - offsets[0] + self.hash_bytes)
        self.scratch.append("hash_data", data)
        self.hash_bytes += int(offsets[-1] - offsets[0])


# --- pass 2: sort and gather ---------------------------------------------------------------


def _build_into(
    out: Path,
    parquet_dir: Path,
    gold_version: int,
    index_id: str,
    batch_rows: int,
    history: bool = False,
) -> dict[str, Any]:
    """One build (Gold's rows, or with `history` its decision history) into the folder `out`."""
    import pyarrow.dataset as ds

    started = time.perf_counter()
    what = "decision history export" if history else "Gold export"
    if not parquet_dir.exists():
        raise IndexBuildError(f"{what} {parquet_dir} does not exist")
    # Low-cardinality string columns stay dictionary-encoded from Parquet to our codes: no
    # per-row strings are ever materialized for them.
    parquet = ds.ParquetFileFormat(read_options={"dictionary_columns": sorted(DICT_FIELDS)})
    dataset = ds.dataset(str(parquet_dir), format=parquet)
    wanted = names(GOLD_DECISION) + ([VALID_FROM] if history else [])
    missing = [c for c in wanted if c not in dataset.schema.names]
    if missing:
        raise IndexBuildError(f"{what} {parquet_dir} lacks columns {missing}")
    scratch = _Scratch(out / "scratch")
    enc = _Encoder(scratch, history)
    try:
        # little readahead: pass 1 memory stays a few batches whatever the size of Gold
        batches = dataset.to_batches(
            columns=wanted, batch_size=batch_rows, batch_readahead=2, fragment_readahead=1
        )
        for batch in batches:
            enc.add(batch)
    finally:
        scratch.close()
    n = enc.n

    hash_plan = _hash_plan(enc)
    row_dtype = _row_dtype(enc, hash_plan)

    key = np.array(scratch.open("key", n))
    # Within a 64-bit key: the low phone bits, then (history) the interval's first day.
    low = np.array(scratch.open("low", n)).astype(np.uint64)
    second = history_sub(low, np.array(scratch.open(VALID_FROM, n))) if history else low
    order = np.lexsort((second, key)) if n else np.zeros(0, dtype=np.int64)
    key = key[order]
    second = second[order]
    if n > 1:
        same = (key[1:] == key[:-1]) & (second[1:] == second[:-1])
        if same.any():
            i = int(np.flatnonzero(same)[0])
            pair = _pair_of(int(key[i]), int(second[i] >> np.uint64(32) if history else second[i]))
            unique = f"{PAIR_KEY} and {VALID_FROM}" if history else f"PAIR_KEY {PAIR_KEY}"
            raise IndexBuildError(
                f"{what} holds the pair {pair} more than once ({unique} must be unique); "
                "refusing to serve it"
            )
    max_run = _max_run(key)
    np.save(out / "keys.npy", key)
    if history:
        np.save(out / "sub.npy", second)
    else:
        np.save(out / "low.npy", second.astype(np.uint32))
    del key, second, low
    np.save(out / "decision.npy", np.asarray(scratch.open("decision", n))[order])

    if n == 0:  # an empty book is still a book: every pair is NOT_FOUND
        np.save(out / "rows.npy", np.zeros(0, dtype=row_dtype))
    rows = np.lib.format.open_memmap(
        out / "rows.npy", mode="r+" if n == 0 else "w+", dtype=row_dtype, shape=(n,)
    )
    sources = {name: scratch.open(name, n) for name in ROW_FIELDS if name != HASH_FIELD}
    hash_end = scratch.open("hash_end", n) if hash_plan["width"] else None
    hash_data = scratch.open("hash_data", enc.hash_bytes) if hash_plan["width"] else None
    for s in range(0, n, GATHER_CHUNK):
        idx = order[s : s + GATHER_CHUNK]
        buf = np.empty(len(idx), dtype=row_dtype)
        for name, src in sources.items():
            values = src[idx]
            if name in INT_FIELDS:
                target = row_dtype.fields[name][0]
                null = values == np.iinfo(np.int64).min
                values = np.where(null, np.iinfo(target).min, values).astype(target)
            buf[name] = values
        if hash_end is not None:
            buf[HASH_FIELD] = _gather_hash(hash_end, hash_data, idx, hash_plan)
        rows[s : s + len(idx)] = buf
    rows.flush()
    del rows, sources, hash_end, hash_data

    dictionaries = {
        name: [value for value, _ in sorted(d.items(), key=lambda kv: kv[1])]
        for name, d in enc.dicts.items()
    }
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "index_id": index_id,
        "gold_version": gold_version,
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "build_seconds": round(time.perf_counter() - started, 3),
        "source": str(parquet_dir),
        "kind": "history" if history else "current",
        "intervals" if history else "pairs": n,
        "reasons": enc.reasons,
        "key": {
            "account_shift": ACCOUNT_SHIFT,
            "phone_low_bits": PHONE_LOW_BITS,
            "description": "keys.npy = (account << 10) | (phone10 >> 24), sorted; "
            "low.npy = phone10 & 0xFFFFFF",
        },
        "max_key_run": max_run,
        "row_fields": list(row_dtype.names),
        "row_dtype": row_dtype.descr,
        "dictionaries": dictionaries,
        "content_hash": hash_plan,
        "null_date": int(NULL_DATE),
        "null_bool": NULL_BOOL,
    }
    shutil.rmtree(out / "scratch")
    for name in ("keys.npy", "sub.npy" if history else "low.npy", "decision.npy", "rows.npy"):
        with open(out / name, "rb+") as f:
            os.fsync(f.fileno())
    # The manifest goes last: a build directory with a manifest is a complete build.
    tmp = out / f".{MANIFEST}"
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out / MANIFEST)
    return manifest


def _hash_plan(enc: _Encoder) -> dict[str, Any]:
    """Lowercase hex of one even length packs to half the bytes; anything else is kept as UTF-8."""
    lo, hi = enc.hash_min_len or 0, enc.hash_max_len
    if enc.n and enc.hash_all_hex and lo == hi and hi % 2 == 0 and hi > 0:
        return {"encoding": "hex", "width": hi // 2, "text_length": hi}
    return {"encoding": "utf8", "width": hi}


def _row_dtype(enc: _Encoder, hash_plan: dict[str, Any]) -> np.dtype:
    fields: list[tuple[str, Any]] = []
    for name in ROW_FIELDS:
        if name in DICT_FIELDS:
            size = len(enc.dicts[DICT_FIELDS[name]])
            fields.append(
                (name, np.uint8 if size <= 256 else np.uint16 if size <= 65536 else np.uint32)
            )
        elif name in BOOL_FIELDS:
            fields.append((name, np.int8))
        elif name in DATE_FIELDS:
            fields.append((name, np.int32))
        elif name in INT_FIELDS:
            lo, hi = enc.int_min.get(name, 0), enc.int_max.get(name, 0)
            for t in (np.int16, np.int32, np.int64):
                if np.iinfo(t).min < lo and hi <= np.iinfo(t).max:
                    fields.append((name, t))
                    break
        elif hash_plan["width"]:
            fields.append((name, f"S{hash_plan['width']}"))
    return np.dtype(fields)  # packed: no alignment padding


def _gather_hash(
    ends: np.ndarray, data: np.ndarray, idx: np.ndarray, plan: dict[str, Any]
) -> np.ndarray:
    if plan["encoding"] == "hex":
        # every hash has the same length and none is null: the text is a dense matrix
        length = plan["text_length"]
        text = data.reshape(-1, length)[idx]
        nibbles = _HEX[text]
        packed = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
        return np.ascontiguousarray(packed).view(f"S{plan['width']}").ravel()
    end = ends[idx].astype(np.int64)
    start = np.where(idx > 0, ends[np.maximum(idx - 1, 0)], 0).astype(np.int64)
    width = plan["width"]
    cols = np.arange(width)
    lengths = end - start
    inside = cols[None, :] < lengths[:, None]
    pos = np.where(inside, start[:, None] + cols, 0)
    text = np.where(inside, data[pos] if len(data) else 0, 0).astype(np.uint8)
    return np.ascontiguousarray(text).view(f"S{width}").ravel()


def _max_run(key: np.ndarray) -> int:
    """Longest run of equal 64-bit keys (pairs of one account whose phones share their top
    bits); the vectorized lookup probes that many rows past the search position."""
    if len(key) == 0:
        return 1
    boundaries = np.flatnonzero(np.diff(key) != 0)
    edges = np.concatenate(([-1], boundaries, [len(key) - 1]))
    return int(np.diff(edges).max())


def _pair_of(key: int, low: int) -> tuple[str, str]:
    account = key >> ACCOUNT_SHIFT
    digits = ((key & ((1 << ACCOUNT_SHIFT) - 1)) << PHONE_LOW_BITS) | low
    return f"{account:016d}", f"+1{digits:010d}"

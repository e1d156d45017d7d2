"""Synthetic Gold `phone_consent` Parquet at any size, for index benchmarks, tests and load tests.

Not a model of the pipeline and not client files (those are `datagen.generate`'s): Gold rows are
drawn at random and the R10 decision is derived from them so that Gold is self-consistent.
Deterministic for a seed. Needs pyarrow; shares only `phone_compliance.schema` with the package.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from phone_compliance.schema import (
    ALLOWED,
    CHANGE,
    CLIENT_SOURCE,
    CONSENT_WITHDRAWN,
    DECISION_HISTORY,
    DECISION_REASONS,
    DELETED,
    ENROLLMENT,
    GOLD_DECISION,
    HARD_DELETE,
    NOT_CLIENT_SOURCED,
    PHONE_SOURCES,
    PHONE_STATUSES,
    PHONE_TECHNOLOGIES,
    PHONE_TYPES,
    SNAPSHOT,
    SOFT_DELETE,
    Schema,
    file_name,
    names,
)

_HEX_CHARS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DAY0 = 18262  # 2020-01-01 in days since the epoch
REASONS = DECISION_REASONS


def gold_arrow_schema(table: Schema = GOLD_DECISION):
    """GOLD_DECISION (or another table of the schema module) as a pyarrow schema."""
    import pyarrow as pa

    types = {
        "STRING": pa.string(),
        "BOOLEAN": pa.bool_(),
        "DATE": pa.date32(),
        "INT": pa.int32(),
        "BIGINT": pa.int64(),
    }
    return pa.schema([(name, types[typ]) for name, typ in table])


def file_pool(count: int = 400, seed: int = 0) -> list[str]:
    """Client-style file names of all three families, with file dates over five years."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        family = (ENROLLMENT, SNAPSHOT, CHANGE)[i % 3]
        day = np.datetime64("2020-01-01") + int(rng.integers(0, 5 * 365))
        ts = str(day).replace("-", "") + f"{int(rng.integers(0, 24 * 3600 * 1000)):09d}"
        out.append(file_name(family, ts, i % 7 + 1))
    return out


def synthetic_batches(
    n_pairs: int,
    *,
    seed: int = 0,
    batch_pairs: int = 1_000_000,
    hash_hex_chars: int = 64,
    files: int = 400,
) -> Iterator[object]:
    """Gold rows in pyarrow Tables of up to `batch_pairs` rows; 1-4 phones per account."""
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = gold_arrow_schema()
    pool = file_pool(files, seed)
    rng = np.random.default_rng(seed)
    next_account = 1_000_000_000_000_000 + int(rng.integers(0, 10**12))
    done = 0
    while done < n_pairs:
        size = min(batch_pairs, n_pairs - done)
        # accounts with 1-4 phones each: phone j of an account shares the area code (and often
        # the exchange) with phone 0 half the time, so 64-bit key prefixes collide realistically.
        per = rng.integers(1, 5, size=size)
        starts = np.cumsum(per) - per
        total = int(per.sum())
        owner = np.repeat(np.arange(size), per)[:size]
        j = (np.arange(total) - np.repeat(starts, per))[:size]
        stride = rng.integers(1, 1000, size=size).astype(np.uint64)
        account_of = np.uint64(next_account) + np.cumsum(stride)
        next_account = int(account_of[-1]) + 1
        acct = account_of[owner]
        first = np.flatnonzero(j == 0)
        area0 = rng.integers(200, 1000, size=size)
        exch0 = rng.integers(200, 1000, size=size)
        line0 = rng.integers(0, 10000, size=size)
        head = first[np.searchsorted(first, np.arange(size), side="right") - 1]
        same_area = (rng.random(size) < 0.5) | (j == 0)
        area = np.where(same_area, area0[head], area0)
        exch = np.where(same_area & (rng.random(size) < 0.5), exch0[head], exch0)
        line = (line0[head] + j * 2501) % 10000
        phone = (area * 10**7 + exch * 10**4 + line).astype(np.uint64)

        source = rng.choice(len(PHONE_SOURCES), size=size, p=[0.8, 0.1, 0.07, 0.03])
        deleted = rng.random(size) < 0.15
        consent = rng.choice(np.array([1, 0, -1], dtype=np.int8), size=size, p=[0.3, 0.1, 0.6])
        client = source == PHONE_SOURCES.index(CLIENT_SOURCE)
        reason = np.full(size, REASONS.index(ALLOWED))
        reason[consent == 0] = REASONS.index(CONSENT_WITHDRAWN)
        reason[deleted] = REASONS.index(DELETED)
        reason[~client] = REASONS.index(NOT_CLIENT_SOURCED)  # R10: the first failing reason
        present = _DAY0 + rng.integers(0, 5 * 365, size=size)
        consent_at = _DAY0 + rng.integers(0, 5 * 365, size=size)
        deleted_at = present + rng.integers(0, 60, size=size)
        has_consent = consent >= 0

        def pick(values, codes: np.ndarray, mask: np.ndarray | None = None):
            taken = pa.array(values, type=pa.string()).take(pa.array(codes))
            if mask is None:
                return taken
            return pc.if_else(pa.array(mask), taken, pa.scalar(None, pa.string()))

        def files_where(mask: np.ndarray | None = None, size: int = size):
            return pick(pool, rng.integers(0, len(pool), size=size), mask)

        hexes = _HEX_CHARS[rng.integers(0, 16, size=(size, hash_hex_chars), dtype=np.uint8)]
        content_hash = (
            pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(hash_hex_chars), size, [None, pa.py_buffer(hexes.tobytes())]
            )
            .cast(pa.binary())
            .cast(pa.string())
        )
        columns = {
            "account_number": pa.array(acct).cast(pa.string()),
            "phone_number": pc.binary_join_element_wise(
                "+1", pa.array(phone).cast(pa.string()), ""
            ),
            "phone_source": pick(PHONE_SOURCES, source),
            "has_sms_consent": pa.array(consent == 1, mask=~has_consent),
            "sms_consent_updated_at": pa.array(consent_at.astype(np.int32), mask=~has_consent).cast(
                pa.date32()
            ),
            "is_deleted": pa.array(deleted),
            "delete_type": pick((SOFT_DELETE, HARD_DELETE), rng.integers(0, 2, size=size), deleted),
            "deleted_at": pa.array(deleted_at.astype(np.int32), mask=~deleted).cast(pa.date32()),
            "can_send_sms": pa.array(reason == REASONS.index(ALLOWED)),
            "reason": pick(REASONS, reason),
            "phone_type": pick(PHONE_TYPES, rng.integers(0, len(PHONE_TYPES), size=size)),
            "phone_status": pick(PHONE_STATUSES, rng.integers(0, len(PHONE_STATUSES), size=size)),
            "phone_technology": pick(
                PHONE_TECHNOLOGIES, rng.integers(0, len(PHONE_TECHNOLOGIES), size=size)
            ),
            "quality_score": pa.array(rng.integers(1, 101, size=size).astype(np.int32)),
            "attributes_file": files_where(),
            "presence_file": files_where(),
            "latest_present_date": pa.array(present.astype(np.int32)).cast(pa.date32()),
            "deletion_file": files_where(deleted),
            "consent_file": files_where(has_consent),
            "content_hash": content_hash,
        }
        yield pa.table([columns[name] for name in names(GOLD_DECISION)], schema=schema)
        done += size


def write_synthetic_gold(
    out_dir: str | Path,
    n_pairs: int,
    *,
    seed: int = 0,
    rows_per_file: int = 2_000_000,
    hash_hex_chars: int = 64,
) -> Path:
    """Write `n_pairs` synthetic Gold rows as Parquet files under `out_dir` (Spark-like layout)."""
    import pyarrow.parquet as pq

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    batches = synthetic_batches(
        n_pairs, seed=seed, batch_pairs=rows_per_file, hash_hex_chars=hash_hex_chars
    )
    for i, table in enumerate(batches):
        pq.write_table(table, out / f"part-{i:05d}.parquet", compression="snappy")
    (out / "_SUCCESS").touch()
    return out


def write_synthetic_history(
    out_dir: str | Path,
    n_pairs: int,
    intervals: int,
    *,
    seed: int = 0,
    rows_per_file: int = 500_000,
) -> Path:
    """A decision history (DECISION_HISTORY Parquet) for the synthetic Gold of the same `n_pairs`
    and `seed`: each pair's Gold row repeated over `intervals` consecutive 30-day intervals, the
    last one open. For the as-of lookup benchmarks: the layout, not the decisions, matters."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    schema = gold_arrow_schema(DECISION_HISTORY)
    starts = _DAY0 + 30 * np.arange(intervals, dtype=np.int32)
    ends = np.append(starts[1:], 0)
    per_file = max(rows_per_file // intervals, 1)
    for i, table in enumerate(synthetic_batches(n_pairs, seed=seed, batch_pairs=per_file)):
        n = table.num_rows
        repeated = table.take(pa.array(np.repeat(np.arange(n), intervals)))
        valid_from = pa.array(np.tile(starts, n), pa.int32()).cast(pa.date32())
        last = np.tile(np.arange(intervals) == intervals - 1, n)
        valid_to = pa.array(np.tile(ends, n), pa.int32(), mask=last).cast(pa.date32())
        repeated = repeated.append_column("valid_from", valid_from).append_column(
            "valid_to", valid_to
        )
        pq.write_table(repeated.cast(schema), out / f"part-{i:05d}.parquet")
    (out / "_SUCCESS").touch()
    return out

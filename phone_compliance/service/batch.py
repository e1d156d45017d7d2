"""Batch scrubbing of a campaign list: a CSV of (account, phone) in, one decision per row out.

Inputs are normalized per R11, lookups made and output columns built over chunks with pyarrow
and numpy (a Python call per row would not scrub a million pairs in seconds); error messages
come from the pure-Python key rules, exactly as for single lookups. A row that cannot be
normalized gets an `error` message and no decision; it never stops the run and is never a
silent FALSE (R11).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from phone_compliance.keys import (
    ACCOUNT_RE,
    NANP_RE,
    InvalidKey,
    normalize_account,
    normalize_phone,
)
from phone_compliance.schema import DECISION_REASONS
from phone_compliance.service.index import (
    BOOL_FIELDS,
    DATE_FIELDS,
    DICT_FIELDS,
    HASH_FIELD,
    INT_FIELDS,
    NULL_DATE,
    ROW_FIELDS,
    DecisionIndex,
)

ACCOUNT_HEADERS = ("account_number", "account")
PHONE_HEADERS = ("phone_number", "phone")
OUTPUT_COLUMNS = (
    "input_account",
    "input_phone",
    "account_number",
    "phone_number",
    "can_send_sms",
    "reason",
    "error",
    *ROW_FIELDS,
    "gold_version",
)


_HEX_PAIRS = np.frombuffer("".join(f"{b:02x}" for b in range(256)).encode(), dtype=np.uint16)


class BatchInputError(ValueError):
    """The input file cannot be scrubbed at all (no header naming the account and phone)."""


@dataclass
class BatchSummary:
    """What a batch run did."""

    rows: int = 0
    invalid: int = 0
    reasons: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    gold_version: int | None = None
    index_id: str | None = None

    def describe(self) -> str:
        """One line for a person."""
        counts = ", ".join(f"{r}={self.reasons.get(r, 0)}" for r in DECISION_REASONS)
        return (
            f"{self.rows} rows in {self.seconds:.2f}s from index {self.index_id} "
            f"(Gold version {self.gold_version}): {counts}, invalid={self.invalid}"
        )


def key_columns(header: list[str]) -> tuple[str, str]:
    """The account and phone column names in a CSV header (account_number/account,
    phone_number/phone; case and surrounding spaces ignored)."""
    lowered = {h.strip().lower().lstrip("\ufeff"): h for h in header}
    account = next((lowered[h] for h in ACCOUNT_HEADERS if h in lowered), None)
    phone = next((lowered[h] for h in PHONE_HEADERS if h in lowered), None)
    if account is None or phone is None:
        raise BatchInputError(
            f"input header {header!r} must name the account (one of {ACCOUNT_HEADERS}) "
            f"and the phone (one of {PHONE_HEADERS})"
        )
    return account, phone


# Vectorized R2/R3, built from the patterns in `phone_compliance.keys`. It only ever accepts
# what `normalize_account` / `normalize_phone` accept, with the same result (a property test holds
# the two to that); every row it does not accept goes through `keys` itself, which is the judge
# and writes the error message.
_FAST_ACCOUNT = r"^ *" + ACCOUNT_RE.pattern.strip("^$") + r" *$"


def normalize_arrays(accounts: Any, phones: Any) -> dict[str, Any]:
    """R11 for many pairs (pyarrow string arrays): `ok` mask, `account`/`digits` as uint64,
    normalized `account_number`/`phone_number` arrays, `error` messages (None when ok)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    accounts = pc.fill_null(accounts.cast(pa.string()), "")
    phones = pc.fill_null(phones.cast(pa.string()), "")
    account = pc.utf8_trim(accounts, " ")
    account_ok = pc.match_substring_regex(accounts, _FAST_ACCOUNT)
    digits = _digits_only(phones)
    national = pc.if_else(
        pc.and_(pc.equal(pc.utf8_length(digits), 11), pc.starts_with(digits, "1")),
        pc.utf8_slice_codeunits(digits, 1),
        digits,
    )
    phone_ok = pc.match_substring_regex(national, NANP_RE.pattern)
    ok = pc.and_(account_ok, phone_ok).to_numpy(zero_copy_only=False)
    n = len(ok)
    acct_int = np.zeros(n, dtype=np.uint64)
    digit_int = np.zeros(n, dtype=np.uint64)
    if ok.any():
        mask = pa.array(ok)
        acct_int[ok] = pc.cast(account.filter(mask), pa.uint64()).to_numpy()
        digit_int[ok] = pc.cast(national.filter(mask), pa.uint64()).to_numpy()
    errors: list[str | None] = [None] * n
    norm_acct = pc.if_else(pa.array(ok), account, pa.scalar(None, pa.string()))
    norm_phone = pc.if_else(
        pa.array(ok),
        pc.binary_join_element_wise("+1", national, ""),
        pa.scalar(None, pa.string()),
    )
    slow = np.flatnonzero(~ok)
    if len(slow):
        fixed_acct: dict[int, str] = {}
        fixed_phone: dict[int, str] = {}
        raw_acct = accounts.take(pa.array(slow)).to_pylist()
        raw_phone = phones.take(pa.array(slow)).to_pylist()
        for i, a_raw, p_raw in zip(slow.tolist(), raw_acct, raw_phone, strict=True):
            try:
                a = normalize_account(a_raw)
                p = normalize_phone(p_raw)
            except InvalidKey:
                errors[i] = _why(a_raw, p_raw)
                continue
            ok[i] = True
            acct_int[i] = int(a)
            digit_int[i] = int(p[2:])
            fixed_acct[i], fixed_phone[i] = a, p
        if fixed_acct:
            norm_acct = _patch(norm_acct, fixed_acct)
            norm_phone = _patch(norm_phone, fixed_phone)
    return {
        "ok": ok,
        "account": acct_int,
        "digits": digit_int,
        "account_number": norm_acct,
        "phone_number": norm_phone,
        "error": pa.array(errors, type=pa.string()),
    }


def _digits_only(arr: Any) -> Any:
    """R3's first step, `re.sub("[^0-9]", "", raw)`, over a whole string array with numpy: drop
    every byte that is not an ASCII digit (UTF-8 multi-byte characters never contain one)."""
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=len(arr) + 1, offset=arr.offset * 4)
    data = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    )
    data = data[offsets[0] : offsets[-1]]
    keep = (data >= ord("0")) & (data <= ord("9"))
    kept_before = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    new_offsets = kept_before[offsets - offsets[0]].astype(np.int32)
    return pa.StringArray.from_buffers(
        len(arr), pa.py_buffer(new_offsets), pa.py_buffer(np.ascontiguousarray(data[keep]))
    )


def _patch(arr: Any, values: dict[int, str]) -> Any:
    import pyarrow as pa

    as_list = arr.to_pylist()
    for i, v in values.items():
        as_list[i] = v
    return pa.array(as_list, type=pa.string())


def _why(account: str, phone: str) -> str:
    reasons = []
    for label, fn, raw in (
        ("account_number", normalize_account, account),
        ("phone_number", normalize_phone, phone),
    ):
        try:
            fn(raw)
        except InvalidKey as e:
            reasons.append(f"{label}: {e}")
    return "; ".join(reasons)


def decision_table(
    index: DecisionIndex, accounts: Any, phones: Any, as_of: dt.date | None = None
) -> Any:
    """Decisions for raw (account, phone) inputs (pyarrow string arrays or lists) as a pyarrow
    Table with OUTPUT_COLUMNS, one row per input in the same order; with `as_of`, the decisions
    the files dated on or before it give (R14)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    accounts = pa.array(accounts, type=pa.string()) if isinstance(accounts, list) else accounts
    phones = pa.array(phones, type=pa.string()) if isinstance(phones, list) else phones
    norm = normalize_arrays(accounts, phones)
    ok = norm["ok"]
    if as_of is None:
        rows = index.lookup(norm["account"], norm["digits"])
    else:  # the history's rows, dictionaries and encodings from here on
        index = index.require_history()
        rows = index.lookup_at(norm["account"], norm["digits"], as_of)
    rows[~ok] = -1
    cols = index.columns(rows)
    invalid = pa.array(~ok)
    reason = pa.DictionaryArray.from_arrays(
        pa.array(cols["reason_code"].astype(np.int32)), pa.array(DECISION_REASONS)
    ).cast(pa.string())
    out: dict[str, Any] = {
        "input_account": accounts,
        "input_phone": phones,
        "account_number": norm["account_number"],
        "phone_number": norm["phone_number"],
        "can_send_sms": pa.array(cols["can_send_sms"], mask=~ok),
        "reason": pc.if_else(invalid, pa.scalar(None, pa.string()), reason),
        "error": norm["error"],
    }
    for name in ROW_FIELDS:
        values = cols.get(name)
        if values is None:
            out[name] = pa.nulls(len(rows), pa.string())
        elif name in DICT_FIELDS:
            dictionary = index.dictionaries[DICT_FIELDS[name]]
            codes = values.astype(np.int32)
            out[name] = pa.DictionaryArray.from_arrays(
                pa.array(codes - 1, mask=codes == 0), pa.array(dictionary[1:], pa.string())
            ).cast(pa.string())
        elif name in BOOL_FIELDS:
            out[name] = pa.array(values == 1, mask=values < 0)
        elif name in DATE_FIELDS:
            out[name] = pa.array(values, mask=values == NULL_DATE).cast(pa.date32())
        elif name in INT_FIELDS:
            out[name] = pa.array(values.astype(np.int64), mask=values == index._int_null)
        elif name == HASH_FIELD:
            out[name] = _hash_column(index, values, cols["found"])
    out["gold_version"] = pa.array(np.full(len(rows), index.gold_version, dtype=np.int64))
    return pa.table([out[c] for c in OUTPUT_COLUMNS], names=list(OUTPUT_COLUMNS))


def _hash_column(index: DecisionIndex, values: np.ndarray, found: np.ndarray) -> Any:
    import pyarrow as pa

    if index.hash_encoding == "hex":
        width = index.hash_width
        raw = np.ascontiguousarray(values).view(np.uint8).reshape(-1, width)
        hexed = _HEX_PAIRS[raw]  # one uint16 (two hex characters) per byte
        text = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(2 * width), len(values), [None, pa.py_buffer(hexed.tobytes())]
        )
        return _masked(text.cast(pa.binary()).cast(pa.string()), found)
    decoded = [v.decode("utf-8") if v else None for v in values.tolist()]
    return _masked(pa.array(decoded, type=pa.string()), found)


def _masked(arr: Any, keep: np.ndarray) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.if_else(pa.array(keep), arr, pa.scalar(None, arr.type))


def _count_lines(path: Path) -> int | None:
    if path.suffix == ".gz":
        return None
    count = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            count += chunk.count(b"\n")
    return max(count - 1, 0)


def check_csv(
    input_path: str | Path,
    output_path: str | Path | None,
    index: DecisionIndex,
    *,
    as_of: dt.date | None = None,
    progress: bool = True,
    block_bytes: int = 8 << 20,
) -> BatchSummary:
    """Scrub a CSV (header `account_number,phone_number` or `account,phone`; other columns are
    ignored) into a CSV of decisions, one row per input row in the same order, now or `as_of` a
    date (R14). `output_path` None or "-" writes to stdout. The progress bar goes to stderr."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from tqdm import tqdm

    started = time.perf_counter()
    input_path = Path(input_path)
    with pa.input_stream(str(input_path), compression="detect") as f:
        first = f.read(1 << 16).split(b"\n", 1)[0].decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(first)), [])
    account_col, phone_col = key_columns(header)
    total = _count_lines(input_path)
    reader = pacsv.open_csv(
        pa.input_stream(str(input_path), compression="detect"),
        read_options=pacsv.ReadOptions(block_size=block_bytes, use_threads=True),
        convert_options=pacsv.ConvertOptions(
            column_types={h: pa.string() for h in header},
            include_columns=[account_col, phone_col],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    summary = BatchSummary(gold_version=index.gold_version, index_id=index.index_id)
    to_stdout = output_path is None or str(output_path) == "-"
    sink = sys.stdout.buffer if to_stdout else pa.OSFile(str(output_path), "wb")
    writer = None
    try:
        with tqdm(
            total=total, unit="rows", unit_scale=True, disable=not progress, file=sys.stderr
        ) as bar:
            for batch in reader:
                table = decision_table(
                    index, batch.column(account_col), batch.column(phone_col), as_of
                )
                if writer is None:
                    writer = pacsv.CSVWriter(sink, table.schema)
                writer.write_table(table)
                summary.rows += table.num_rows
                summary.invalid += table.num_rows - table["error"].null_count
                for value in table["reason"].value_counts().to_pylist():
                    if value["values"] is not None:
                        summary.reasons[value["values"]] += value["counts"]
                bar.update(table.num_rows)
        if writer is None:  # header only: still write the output header
            empty = decision_table(index, [], [], as_of)
            writer = pacsv.CSVWriter(sink, empty.schema)
            writer.write_table(empty)
    finally:
        if writer is not None:
            writer.close()
        if not to_stdout:
            sink.close()
        else:
            sys.stdout.flush()
    summary.seconds = time.perf_counter() - started
    return summary

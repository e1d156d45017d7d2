"""Check a serving index against the Gold it was built from: every pair, every field.

For tests ("the decision agrees with Gold for every pair") and for an asset check after a build:
each Gold row is looked up through the same path the batch CLI uses (R11 normalization,
vectorized lookup) and its decision, reason and Gold fields compared; the index must hold no
pair Gold lacks. Needs pyarrow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phone_compliance.schema import GOLD_DECISION, names
from phone_compliance.service.batch import decision_table
from phone_compliance.service.decisions import PAIR_FIELDS
from phone_compliance.service.index import DecisionIndex

COMPARED = ("can_send_sms", "reason", *PAIR_FIELDS)


@dataclass
class Verification:
    """What `verify_index` found."""

    gold_pairs: int = 0
    index_pairs: int = 0
    mismatched_pairs: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the index answers exactly as Gold for every pair, and holds nothing else."""
        return self.mismatched_pairs == 0 and self.gold_pairs == self.index_pairs

    def describe(self) -> str:
        """One paragraph for a person (or an asset check's metadata)."""
        head = (
            f"{self.gold_pairs} Gold pairs, {self.index_pairs} indexed, "
            f"{self.mismatched_pairs} disagreeing"
        )
        return "\n".join([head, *self.examples])


def verify_index(
    index: DecisionIndex | str | Path,
    parquet_dir: str | Path,
    *,
    batch_rows: int = 1 << 18,
    max_examples: int = 20,
) -> Verification:
    """Compare every Gold row of `parquet_dir` with what `index` answers for its pair."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    if not isinstance(index, DecisionIndex):
        index = DecisionIndex(index)
    result = Verification(index_pairs=index.n)
    dataset = ds.dataset(str(parquet_dir), format="parquet")
    # Little readahead, as in the build: memory stays a few batches whatever the size of Gold
    # (pyarrow's default reads ahead 16 batches).
    batches = dataset.to_batches(
        columns=names(GOLD_DECISION),
        batch_size=batch_rows,
        batch_readahead=2,
        fragment_readahead=1,
    )
    for batch in batches:
        if batch.num_rows == 0:
            continue
        got = decision_table(index, batch.column("account_number"), batch.column("phone_number"))
        bad = pa.array([False] * batch.num_rows)
        diffs: dict[str, Any] = {}
        for name in COMPARED:
            want = batch.column(name)
            have = got.column(name)
            if have.type != want.type:
                have = have.cast(want.type)
            same = pc.or_(
                pc.fill_null(pc.equal(have, want), False),
                pc.and_(pc.is_null(have), pc.is_null(want)),
            )
            diffs[name] = pc.invert(same)
            bad = pc.or_(bad, diffs[name])
        errors = pc.invert(pc.is_null(got.column("error")))
        bad = pc.or_(bad, errors)
        count = pc.sum(bad).as_py() or 0
        result.gold_pairs += batch.num_rows
        result.mismatched_pairs += count
        if count and len(result.examples) < max_examples:
            for i in pc.indices_nonzero(bad).to_pylist()[: max_examples - len(result.examples)]:
                pair = f"({batch.column('account_number')[i]}, {batch.column('phone_number')[i]})"
                what = [
                    f"{n} gold={batch.column(n)[i]} index={got.column(n)[i]}"
                    for n in COMPARED
                    if diffs[n][i].as_py()
                ] or [f"error {got.column('error')[i]}"]
                result.examples.append(f"{pair}: {', '.join(what)}")
    return result

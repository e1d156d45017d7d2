"""The serving index: building from Gold Parquet, refusing bad Gold, publishing, swapping."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from datagen.synthetic_gold import write_synthetic_gold
from phone_compliance.keys import InvalidKey, normalize_account, normalize_phone
from phone_compliance.schema import ALLOWED, DELETED, NOT_FOUND
from phone_compliance.service import DecisionIndex, IndexNotFound, LiveIndex, build_index
from phone_compliance.service.batch import decision_table, normalize_arrays
from phone_compliance.service.build import IndexBuildError, remove_old_builds
from phone_compliance.service.decisions import PAIR_FIELDS
from phone_compliance.service.index import CURRENT, read_current
from phone_compliance.service.verify import verify_index
from phone_compliance_tests.service.conftest import ACCT, CASES, gold_row, write_gold


def test_index_layout_is_versioned_builds_behind_an_atomic_pointer(index_dir: Path) -> None:
    current = read_current(index_dir)
    assert current is not None and current.startswith("v3-")
    build = index_dir / current
    assert {p.name for p in build.iterdir()} == {
        "manifest.json",
        "keys.npy",
        "low.npy",
        "decision.npy",
        "rows.npy",
        "history",
    }
    assert {p.name for p in (build / "history").iterdir()} == {
        "manifest.json",
        "keys.npy",
        "sub.npy",
        "decision.npy",
        "rows.npy",
    }
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["gold_version"] == 3
    assert manifest["pairs"] == len(CASES)
    assert sum(manifest["reasons"].values()) == len(CASES)
    history = json.loads((build / "history" / "manifest.json").read_text())
    assert (history["kind"], history["intervals"]) == ("history", len(CASES) + 1)
    assert not [p for p in index_dir.iterdir() if p.name.startswith(".")]


def test_rebuild_publishes_the_new_build_and_keeps_only_recent_ones(
    tmp_path: Path, gold_dir: Path
) -> None:
    target = tmp_path / "idx"
    paths = [build_index(gold_dir, target, version, keep=2) for version in (4, 5, 6)]
    assert read_current(target) == paths[-1].name
    assert sorted(p.name for p in target.iterdir() if p.is_dir()) == sorted(
        p.name for p in paths[1:]
    )
    assert DecisionIndex(target).gold_version == 6
    assert remove_old_builds(target, keep=1) == [paths[1].name]
    # publish_build=False leaves CURRENT alone (e.g. to validate a build before switching)
    unpublished = build_index(gold_dir, target, 7, publish_build=False)
    assert read_current(target) == paths[-1].name
    assert DecisionIndex(unpublished).gold_version == 7


def test_open_without_a_published_index_says_so(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound, match="no decision index"):
        DecisionIndex(tmp_path)
    live = LiveIndex(tmp_path)
    with pytest.raises(IndexNotFound):
        live.current()


def test_empty_gold_serves_not_found(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    build_index(write_gold(tmp_path / "gold", []), target, 0)
    index = DecisionIndex(target)
    assert index.n == 0
    assert index.decide(ACCT, "2125550100").reason == NOT_FOUND
    table = decision_table(index, [ACCT], ["2125550100"])
    assert table["reason"].to_pylist() == [NOT_FOUND]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"phone_number": "2125550100"}, "not normalized"),
        ({"account_number": "12345"}, "not normalized"),
        ({"account_number": None}, "not normalized"),
        ({"reason": "MAYBE"}, "not a valid R10 decision"),
        ({"reason": None}, "not a valid R10 decision"),
        ({"reason": NOT_FOUND, "can_send_sms": False}, "not a valid R10 decision"),
        ({"can_send_sms": False}, "not a valid R10 decision"),  # ALLOWED but FALSE
        ({"can_send_sms": None}, "not a valid R10 decision"),
        ({"can_send_sms": True, "reason": DELETED}, "not a valid R10 decision"),
    ],
)
def test_build_refuses_gold_it_cannot_serve_faithfully(
    tmp_path: Path, change: dict, message: str
) -> None:
    target = tmp_path / "idx"
    rows = [gold_row(ACCT, "+12125550100"), gold_row(ACCT, "+12125550101", **change)]
    with pytest.raises(IndexBuildError, match=message):
        build_index(write_gold(tmp_path / "gold", rows), target, 1)
    assert read_current(target) is None
    assert [p.name for p in target.iterdir()] == []  # nothing half-built is left behind


def test_build_refuses_duplicate_pairs(tmp_path: Path) -> None:
    rows = [gold_row(ACCT, "+12125550100"), gold_row(ACCT, "+12125550100", reason=ALLOWED)]
    with pytest.raises(IndexBuildError, match=r"more than once"):
        build_index(write_gold(tmp_path / "gold", rows), tmp_path / "idx", 1)


def test_build_refuses_gold_missing_columns(tmp_path: Path) -> None:
    (tmp_path / "gold").mkdir()
    pq.write_table(pa.table({"account_number": [ACCT]}), tmp_path / "gold" / "p.parquet")
    with pytest.raises(IndexBuildError, match="lacks columns"):
        build_index(tmp_path / "gold", tmp_path / "idx", 1)


def test_content_hash_that_is_not_hex_is_kept_as_text(tmp_path: Path) -> None:
    rows = [
        gold_row(ACCT, "+12125550100", content_hash="not-hex é"),
        gold_row(ACCT, "+12125550101", content_hash=None),
    ]
    target = tmp_path / "idx"
    build_index(write_gold(tmp_path / "gold", rows), target, 1)
    index = DecisionIndex(target)
    assert index.decide(ACCT, "2125550100").content_hash == "not-hex é"
    assert index.decide(ACCT, "2125550101").content_hash is None


def test_live_index_swaps_to_a_newer_build(tmp_path: Path, gold_dir: Path) -> None:
    target = tmp_path / "idx"
    build_index(gold_dir, target, 1)
    live = LiveIndex(target, poll_interval=0)
    first = live.current()
    assert first.gold_version == 1
    rows = [gold_row(ACCT, "+12125550100", can_send_sms=False, reason=DELETED)]
    build_index(write_gold(tmp_path / "gold2", rows), target, 2)
    second = live.current()
    assert second.gold_version == 2
    assert second.decide(ACCT, "2125550100").reason == DELETED
    # a request that still holds the old build keeps getting answers from it
    assert first.decide(ACCT, "2125550100").reason == ALLOWED


def test_warm_touches_the_whole_index_before_a_swap(tmp_path: Path, gold_dir: Path) -> None:
    target = tmp_path / "idx"
    build_index(gold_dir, target, 1)
    index = DecisionIndex(target)
    size = sum(a.nbytes for a in (index.keys, index.low, index.decision, index.rows))
    assert index.warm() == size > 0
    live = LiveIndex(target, poll_interval=0, warm=True)
    assert live.current().decide(ACCT, "2125550100").reason == ALLOWED


def test_live_index_keeps_serving_when_the_pointer_is_broken(
    tmp_path: Path, gold_dir: Path
) -> None:
    target = tmp_path / "idx"
    build_index(gold_dir, target, 1)
    live = LiveIndex(target, poll_interval=0)
    assert live.current().gold_version == 1
    tmp = target / "CURRENT.tmp"
    tmp.write_text("v9-missing\n")
    os.replace(tmp, target / CURRENT)
    assert live.current().gold_version == 1
    assert live.last_error and "could not open" in live.last_error


@pytest.fixture(scope="module")
def synthetic_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pa.Table]:
    base = tmp_path_factory.mktemp("synthetic")
    gold = write_synthetic_gold(base / "gold", 20_000, seed=7, rows_per_file=6_000)
    build_index(gold, base / "idx", 11, batch_rows=5_000)
    return base / "idx", pq.read_table(gold)


def test_r10_index_agrees_with_gold_for_every_pair_of_a_synthetic_gold(
    synthetic_index: tuple[Path, pa.Table],
) -> None:
    index_dir, gold = synthetic_index
    index = DecisionIndex(index_dir)
    assert index.max_run > 1  # phones of one account do share key prefixes here
    for row in gold.to_pylist():
        decision = index.decide(row["account_number"], row["phone_number"])
        assert (decision.allowed, decision.reason) == (row["can_send_sms"], row["reason"])
        assert [getattr(decision, f) for f in PAIR_FIELDS] == [row[f] for f in PAIR_FIELDS]


def test_batch_lookup_agrees_with_single_lookups(synthetic_index: tuple[Path, pa.Table]) -> None:
    index_dir, gold = synthetic_index
    index = DecisionIndex(index_dir)
    rng = np.random.default_rng(3)
    accounts = gold["account_number"].to_pylist()
    phones = gold["phone_number"].to_pylist()
    pick = rng.integers(0, len(accounts), 3000)
    queries_a = [accounts[i] for i in pick] + ["1234567890123456", "bad"]
    queries_p = [
        f"({p[2:5]}) {p[5:8]}-{p[8:]}" if k % 2 else p[2:]
        for k, p in enumerate(phones[i] for i in pick)
    ] + ["2125550100", "2125550100"]
    table = decision_table(index, queries_a, queries_p).to_pylist()
    for a, p, out in zip(queries_a, queries_p, table, strict=True):
        try:
            single = index.decide(a, p)
        except InvalidKey as e:
            assert out["can_send_sms"] is None and out["reason"] is None
            assert str(e) in out["error"]
            continue
        assert out["error"] is None
        assert out["account_number"] == single.account_number
        assert out["phone_number"] == single.phone_number
        assert (out["can_send_sms"], out["reason"]) == (single.allowed, single.reason)
        assert [out[f] for f in PAIR_FIELDS] == [getattr(single, f) for f in PAIR_FIELDS]
        assert out["gold_version"] == 11


phone_like = st.text(alphabet="0123456789 +-().1\t\u00a0\u0663x", max_size=18)
account_like = st.text(alphabet="0123456789 \t\n\u2003a", max_size=20)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(account_like | st.text(max_size=20), phone_like | st.text()), max_size=8))
@example([(" 1234567890123456 ", "+1 (212) 555-0100"), ("1234567890123456\n", "12125550100")])
def test_r11_vectorized_normalization_is_exactly_the_key_rules(pairs: list) -> None:
    accounts = [a for a, _ in pairs]
    phones = [p for _, p in pairs]
    out = normalize_arrays(pa.array(accounts, pa.string()), pa.array(phones, pa.string()))
    for i, (a, p) in enumerate(pairs):
        try:
            expected = (normalize_account(a), normalize_phone(p))
        except InvalidKey:
            expected = None
        if expected is None:
            assert not out["ok"][i] and out["error"][i].as_py()
        else:
            assert out["ok"][i] and out["error"][i].as_py() is None
            got = (out["account_number"][i].as_py(), out["phone_number"][i].as_py())
            assert got == expected
            assert int(out["account"][i]) == int(expected[0])
            assert int(out["digits"][i]) == int(expected[1][2:])


def test_r12_verify_index_agrees_with_gold_and_catches_a_disagreement(
    synthetic_index: tuple[Path, pa.Table], tmp_path: Path, gold_dir: Path, gold_rows: list
) -> None:
    index_dir, _ = synthetic_index
    gold = Path(index_dir).parent / "gold"
    result = verify_index(index_dir, gold)
    assert result.ok, result.describe()
    assert result.gold_pairs == result.index_pairs == 20_000

    target = tmp_path / "idx"
    build_index(gold_dir, target, 1)
    assert verify_index(target, gold_dir).ok
    changed = [dict(r) for r in gold_rows]
    changed[0]["quality_score"] = 1
    changed[1] = {**changed[1], "can_send_sms": False, "reason": DELETED}
    result = verify_index(target, write_gold(tmp_path / "changed", changed))
    assert not result.ok and result.mismatched_pairs == 2
    assert "quality_score gold=1 index=87" in result.describe()
    assert verify_index(target, write_gold(tmp_path / "fewer", gold_rows[:-1])).ok is False

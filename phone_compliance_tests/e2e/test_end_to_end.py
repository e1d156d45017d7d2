"""End to end on generated datasets (clean and dirty): nothing lost, rejects as planted, every
pair (planted cases included) decided as the reference model says, the serving index agreeing
with Gold for every pair, and the audit of a pair listing what the warehouse holds of it."""

from __future__ import annotations

from functools import reduce
from pathlib import Path

import pytest
from pyspark.sql import DataFrame

import datagen
from phone_compliance import keys, schema
from phone_compliance.lakehouse import delta
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.service.audit import audit
from phone_compliance.service.verify import verify_index
from phone_compliance.settings import Settings
from phone_compliance_tests import model
from phone_compliance_tests.conftest import lake_settings
from phone_compliance_tests.harness import failed_checks, run_pipeline, table

ACCOUNTS = 300


@pytest.fixture(scope="module", params=["clean", "dirty"])
def built(request, spark, tmp_path_factory):
    """A generated dataset and the warehouse the whole graph built from it."""
    lake: Settings = lake_settings(tmp_path_factory.mktemp(request.param))
    manifest = datagen.generate(
        Path(lake.landing), seed=11, accounts=ACCOUNTS, dirty=request.param == "dirty"
    )
    result = run_pipeline(lake)
    return lake, manifest, result


def test_e2e_graph_succeeds_with_only_warnings(built):
    _, manifest, result = built
    assert result.success
    allowed = {"r1_reject_rate", "r1_1_unknown_domain_values"} if manifest["dirty"] else set()
    assert set(failed_checks(result)) <= allowed


def test_e2e_r1_2_no_row_lost(spark, built):
    lake, manifest, _ = built
    ledger = {r["source_file"]: r for r in table(spark, lake, "bronze/file_ledger").collect()}
    for f in manifest["files"]:
        name = Path(f["path"]).name
        assert name in ledger, name
        row = ledger[name]
        assert row["rows_read"] == row["rows_accepted"] + row["rows_rejected"], name
        if row["status"] == schema.LEDGER_INGESTED:
            assert row["rows_read"] == f["rows"], name


def test_e2e_r1_rejects_match_the_manifest(spark, built):
    lake, manifest, _ = built
    rejects = {
        (r["source_file"], r["line_number"]): r["reason"]
        for r in table(spark, lake, "bronze/rejects").collect()
    }
    expected = {}
    for d in manifest["dirty"]:
        kind, _, code = d["expected"].partition(":")
        name = Path(d["file"]).name
        if kind == "reject_row":
            expected[(name, d["line"])] = code
        elif kind == "reject_file":
            expected[(name, 0)] = code
        else:  # kept rows must not be rejected
            assert (name, d["line"]) not in rejects, d
    assert rejects == expected


def test_e2e_r4_to_r10_every_pair_decided_as_the_model_says(spark, built):
    lake, manifest, _ = built
    rows, snapshot_dates = model.rows_from_files(lake.landing)
    expected = model.decide(rows, snapshot_dates)
    gold = {
        (r["account_number"], r["phone_number"]): r.asDict()
        for r in table(spark, lake, "gold/phone_consent").collect()
    }
    assert set(gold) == set(expected)
    wrong = [p for p, want in expected.items() if {k: gold[p][k] for k in want} != want]
    assert not wrong, wrong[:5]
    for case, pairs in manifest["planted"].items():
        for pair in pairs:
            key = (pair["account_number"], pair["phone_number"])
            assert key in gold, (case, key)


def test_e2e_r12_serving_index_agrees_with_gold_for_every_pair(spark, built, tmp_path):
    lake, _, _ = built
    export = tmp_path / "gold"
    table(spark, lake, "gold/phone_consent").write.parquet(export.as_uri())
    where = Locations(lake).index_dir
    verification = verify_index(where, export)
    assert verification.ok, verification.describe()


# Rejects planted by changing one field that is neither the account nor the phone (datagen.dirty).
READABLE_REJECTS = (schema.REJECT_DATE, schema.REJECT_CONSENT_FLAG, schema.REJECT_SOFT_DELETE_FLAG)


def _pair_of_line(family: str, raw_text: str) -> tuple[str, str]:
    fields = dict(zip(schema.FAMILY_BY_NAME[family].columns, raw_text.split("|"), strict=False))
    if family == schema.ENROLLMENT.name:
        account, phone = fields["account_number"], fields["phone_number"]
    else:
        account, phone = fields["cnsmr_idntfr_lgcy_txt"][:16], fields["cnsmr_phn_nmbr_txt"]
    return account, keys.normalize_phone(phone)


def test_e2e_r14_audit_lists_what_the_warehouse_holds_of_a_pair(spark, built):
    # The audit reads with delta-rs what Spark wrote: for the planted pairs and the pairs of the
    # readable rejects, every Bronze row, those rejects, the history and the publications.
    lake, manifest, _ = built
    if not manifest["dirty"]:
        pytest.skip("the dirty dataset has the clean one's cases and the rejects too")
    locations = Locations(lake)
    rejects = [
        (
            _pair_of_line(r["family"], r["raw_text"]),
            (r["source_file"], r["line_number"], r["reason"]),
        )
        for r in table(spark, lake, "bronze/rejects").collect()
        if r["reason"] in READABLE_REJECTS
    ]
    planted = [case[0] for case in manifest["planted"].values()]  # a pair of each case
    pairs = {pair for pair, _ in rejects} | {
        (p["account_number"], p["phone_number"]) for p in planted
    }
    chosen = spark.createDataFrame(sorted(pairs), list(schema.PAIR_KEY))

    def rows_of(paths: list[str], *columns: str) -> dict[tuple[str, str], list]:
        frames = [
            table(spark, lake, path).select(*schema.PAIR_KEY, *columns)
            for path in paths
            if delta.exists(spark, locations.table_of(path.split("/")))
        ]
        out: dict[tuple[str, str], list] = {}
        if not frames:
            return out
        rows = reduce(DataFrame.unionAll, frames).join(chosen, list(schema.PAIR_KEY), how="inner")
        for r in rows.collect():
            pair = (r["account_number"], r["phone_number"])
            out.setdefault(pair, []).append(tuple(r[c] for c in columns))
        return out

    families = [f"bronze/{family.name}" for family in schema.FAMILIES]
    bronze = rows_of(families, "source_file", "line_number")
    history = rows_of(["gold/decision_history"], "valid_from")
    changes = rows_of(["gold/decision_changes"], "gold_version")
    for pair in sorted(pairs):
        found = audit(locations, *pair)
        accepted = [e for e in found.evidence if e["status"] == "accepted"]
        assert sorted((e["source_file"], e["line_number"]) for e in accepted) == sorted(
            bronze.get(pair, [])
        )
        shown = {
            (e["source_file"], e["line_number"], e["reject_reason"])
            for e in found.evidence
            if e["status"] == "rejected"
        }
        assert shown >= {where for of, where in rejects if of == pair}
        assert [d["valid_from"] for d in found.decisions] == [
            v for (v,) in sorted(history.get(pair, []))
        ]
        if found.publications is not None:
            versions = [p["gold_version"] for p in found.publications]
            assert versions == sorted(v for (v,) in changes.get(pair, []))

"""Settings and Locations: one deployment's value, read from an environment once. No Spark."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from phone_compliance.ingest.ssn_key import ssn_hash_key
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.settings import PROJECT_ROOT, Settings


def test_from_env_of_an_empty_environment_is_the_local_defaults():
    got = Settings.from_env({})
    assert got == Settings()
    assert (got.env, got.production) == ("local", False)
    assert (got.landing, got.warehouse, got.dagster_home) == (
        str(PROJECT_ROOT / "data_sample"),
        str(PROJECT_ROOT / "warehouse"),
        str(PROJECT_ROOT / ".dagster_home"),
    )
    assert (got.index_dir, got.s3_endpoint, got.aws_region, got.ssn_hash_key) == (None,) * 4
    assert got.spark_conf == ()


def test_from_env_reads_every_setting():
    got = Settings.from_env(
        {
            "PHONE_COMPLIANCE_ENV": "production",
            "PHONE_COMPLIANCE_LANDING": "s3://landing/in",
            "PHONE_COMPLIANCE_WAREHOUSE": "s3://lake/wh",
            "PHONE_COMPLIANCE_DRIVER_MEMORY": "2g",
            "PHONE_COMPLIANCE_SHUFFLE_PARTITIONS": "64",
            "PHONE_COMPLIANCE_S3_ENDPOINT": "http://minio:9000",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "PHONE_COMPLIANCE_INDEX": "/srv/index",
            "DAGSTER_HOME": "/srv/dagster",
            "PHONE_COMPLIANCE_SPARK_MASTER": "local[2]",
            "PHONE_COMPLIANCE_SPARK_CONF": "spark.a=1",
            "PHONE_COMPLIANCE_SSN_HASH_KEY": "secret",
        }
    )
    assert got == Settings(
        env="production",
        landing="s3://landing/in",
        warehouse="s3://lake/wh",
        driver_memory="2g",
        shuffle_partitions=64,
        s3_endpoint="http://minio:9000",
        aws_region="eu-west-1",
        index_dir="/srv/index",
        dagster_home="/srv/dagster",
        spark_master="local[2]",
        spark_conf=(("spark.a", "1"),),
        ssn_hash_key="secret",
    )
    assert got.production
    assert "secret" not in repr(got)


def test_from_env_prefers_aws_region_and_treats_empty_values_as_unset():
    got = Settings.from_env(
        {
            "AWS_REGION": "us-east-2",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "PHONE_COMPLIANCE_S3_ENDPOINT": "",
            "DAGSTER_HOME": "",
            "PHONE_COMPLIANCE_SSN_HASH_KEY": "",
        }
    )
    assert got.aws_region == "us-east-2"
    assert (got.s3_endpoint, got.ssn_hash_key) == (None, None)
    assert got.dagster_home == Settings().dagster_home


def test_spark_conf_is_key_value_pairs_separated_by_commas_or_new_lines():
    text = " spark.a = 1 ,\nspark.b=x=y\n\n,spark.c=,"
    got = Settings.from_env({"PHONE_COMPLIANCE_SPARK_CONF": text}).spark_conf
    assert got == (("spark.a", "1"), ("spark.b", "x=y"), ("spark.c", ""))


@pytest.mark.parametrize("item", ["spark.a", "=1"])
def test_spark_conf_item_that_is_not_key_value_is_an_error(item):
    with pytest.raises(ValueError, match=f"PHONE_COMPLIANCE_SPARK_CONF: '{item}' is not key=value"):
        Settings.from_env({"PHONE_COMPLIANCE_SPARK_CONF": f"spark.ok=1,{item}"})


def test_an_unknown_environment_is_an_error():
    with pytest.raises(ValueError, match="'staging'"):
        Settings.from_env({"PHONE_COMPLIANCE_ENV": "staging"})


def test_with_overrides_changes_the_given_fields_and_ignores_none():
    base = Settings(warehouse="/tmp/wh", shuffle_partitions=4)
    got = base.with_overrides(warehouse=None, landing="/tmp/in", shuffle_partitions=2)
    assert got == Settings(warehouse="/tmp/wh", landing="/tmp/in", shuffle_partitions=2)
    assert base.landing == Settings().landing  # a copy: the original is unchanged
    with pytest.raises(ValueError):
        base.with_overrides(env="staging")


def test_an_s3_warehouse_is_read_by_spark_through_s3a():
    locations = Locations(Settings(warehouse="s3://lake/wh/"))
    assert locations.warehouse == "s3a://lake/wh"
    assert locations.table("silver", "pair_state") == "s3a://lake/wh/silver/pair_state"
    assert locations.table_of(("bronze", "file_ledger")) == "s3a://lake/wh/bronze/file_ledger"


def test_a_local_warehouse_keeps_its_path():
    locations = Locations(Settings(warehouse="/data/wh/"))
    assert locations.table("gold", "phone_consent") == "/data/wh/gold/phone_consent"


def test_delta_rs_reads_s3_with_the_endpoint_and_region():
    settings = Settings(
        warehouse="s3://lake/wh", s3_endpoint="http://minio:9000", aws_region="eu-west-1"
    )
    locations = Locations(settings)
    assert locations.delta_rs(locations.table("gold", "phone_consent")) == (
        "s3://lake/wh/gold/phone_consent",
        {
            "AWS_ENDPOINT_URL": "http://minio:9000",
            "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": "eu-west-1",
        },
    )
    https = Locations(settings.with_overrides(s3_endpoint="https://s3.example.com"))
    assert https.delta_rs("s3a://lake/wh/t")[1]["AWS_ALLOW_HTTP"] == "false"
    # Real S3: no endpoint, no region: the AWS provider chain decides.
    assert Locations(Settings(warehouse="s3://lake/wh")).delta_rs("s3a://lake/wh/t") == (
        "s3://lake/wh/t",
        {},
    )


@pytest.mark.parametrize(
    "uri", ["/data/wh/gold/phone_consent", "file:///data/wh/gold/phone_consent"]
)
def test_delta_rs_reads_a_local_table_by_its_path(uri):
    assert Locations(Settings()).delta_rs(uri) == ("/data/wh/gold/phone_consent", None)


def test_index_dir_is_explicit_else_beside_a_local_warehouse_else_under_the_project():
    assert Locations(Settings(index_dir="/srv/index")).index_dir == Path("/srv/index")
    assert Locations(Settings(warehouse="/data/wh")).index_dir == Path(
        "/data/wh/serving/decision_index"
    )
    assert Locations(Settings(warehouse="file:///data/wh")).index_dir == Path(
        "/data/wh/serving/decision_index"
    )
    assert Locations(Settings(warehouse="s3://lake/wh")).index_dir == (
        PROJECT_ROOT / "warehouse" / "serving" / "decision_index"
    )


def test_the_ssn_key_file_is_under_the_dagster_home():
    locations = Locations(Settings(dagster_home="/srv/dagster"))
    assert locations.dagster_home == Path("/srv/dagster")
    assert locations.ssn_key_file == Path("/srv/dagster/ssn_hash_key")


def _beside(tmp_path: Path, name: str, **fields: object) -> Settings:
    """Settings whose Dagster home and warehouse are folders `name` under `tmp_path`: the SSN key
    records its fingerprint in the warehouse, which must never be the project's own."""
    return Settings(
        dagster_home=str(tmp_path / name / "dagster_home"),
        warehouse=str(tmp_path / name / "warehouse"),
        **fields,
    )


def test_a_local_ssn_hash_key_is_made_once_readable_by_its_owner_only(tmp_path):
    locations = Locations(_beside(tmp_path, "one"))
    first = ssn_hash_key(locations)
    assert len(first) == 32
    assert stat.S_IMODE(os.stat(locations.ssn_key_file).st_mode) == 0o600
    # Later calls, and other processes with the same Dagster home, read the same key.
    assert ssn_hash_key(locations) == first
    assert ssn_hash_key(Locations(locations.settings)) == first
    assert ssn_hash_key(Locations(_beside(tmp_path, "two"))) != first


def test_a_configured_ssn_hash_key_is_used_and_no_file_is_made(tmp_path):
    settings = _beside(tmp_path, "prod", env="production", ssn_hash_key="secret")
    locations = Locations(settings)
    assert ssn_hash_key(locations) == ssn_hash_key(Locations(settings.with_overrides(env="local")))
    assert not locations.ssn_key_file.exists()


def test_production_without_an_ssn_hash_key_is_an_error(tmp_path):
    locations = Locations(_beside(tmp_path, "prod", env="production"))
    with pytest.raises(RuntimeError, match="PHONE_COMPLIANCE_SSN_HASH_KEY"):
        ssn_hash_key(locations)
    assert not locations.ssn_key_file.exists()

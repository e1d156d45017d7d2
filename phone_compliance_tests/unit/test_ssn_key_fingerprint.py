"""The SSN hash key is never replaced unseen: the warehouse records its fingerprint on first use
and every later run must bring the same key. Pure Python (S3 through moto, in process)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from phone_compliance.ingest.ssn_key import (
    ENV_VAR,
    FINGERPRINT_PATH,
    SsnKeyChanged,
    fingerprint,
    ssn_hash_key,
)
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.settings import Settings


def local(tmp_path: Path, home: str = "home", **settings) -> Locations:
    """A local deployment whose warehouse and Dagster home are under `tmp_path`."""
    return Locations(
        Settings(
            warehouse=str(tmp_path / "warehouse"), dagster_home=str(tmp_path / home), **settings
        )
    )


def record_of(locations: Locations) -> Path:
    return Path(locations.settings.warehouse, FINGERPRINT_PATH)


def test_first_use_records_the_fingerprint_and_the_same_key_passes(tmp_path):
    locations = local(tmp_path)
    key = ssn_hash_key(locations)
    recorded = json.loads(record_of(locations).read_text())
    assert recorded["fingerprint"] == fingerprint(key)
    assert str(locations.ssn_key_file) in recorded["source"]
    # Later runs, and other processes of the same deployment, bring the same key.
    assert ssn_hash_key(locations) == key
    assert ssn_hash_key(local(tmp_path)) == key


def test_the_local_key_file_is_made_once_readable_by_its_owner_only(tmp_path):
    locations = local(tmp_path)
    ssn_hash_key(locations)
    assert stat.S_IMODE(os.stat(locations.ssn_key_file).st_mode) == 0o600
    # Made whole in one step: no staged file is left beside it.
    assert os.listdir(locations.dagster_home) == [locations.ssn_key_file.name]


def test_a_lost_dagster_home_stops_the_run_and_says_how_to_fix_it(tmp_path):
    first = local(tmp_path)
    recorded = fingerprint(ssn_hash_key(first))
    lost = local(tmp_path, home="new_home")  # same warehouse, the key file gone
    with pytest.raises(SsnKeyChanged) as raised:
        ssn_hash_key(lost)
    message = str(raised.value)
    new_key = (lost.dagster_home / "ssn_hash_key").read_text().strip().encode()
    assert recorded in message
    assert fingerprint(hashlib.sha256(new_key).digest()) in message
    assert "made just now" in message
    assert str(lost.ssn_key_file) in message and ENV_VAR in message  # where the key comes from
    assert "restore the key file" in message and "to the original secret" in message
    # The record is kept: the original key still passes.
    assert ssn_hash_key(first) == ssn_hash_key(local(tmp_path))


def test_a_different_configured_key_stops_the_run(tmp_path):
    ssn_hash_key(local(tmp_path, ssn_hash_key="original"))
    production = local(tmp_path, env="production", ssn_hash_key="another")
    with pytest.raises(SsnKeyChanged, match=f"comes from {ENV_VAR}") as raised:
        ssn_hash_key(production)
    assert "restore the key file" not in str(raised.value)  # production has no key file
    assert ssn_hash_key(local(tmp_path, env="production", ssn_hash_key="original"))


def test_the_record_never_holds_the_key(tmp_path):
    secret = "the-secret-of-this-deployment"
    key = ssn_hash_key(local(tmp_path, ssn_hash_key=secret))
    generated = local(tmp_path / "other")
    generated_key = ssn_hash_key(generated)
    file_secret = generated.ssn_key_file.read_text().strip()
    for locations, values in (
        (local(tmp_path), (secret, key.hex(), key.hex().upper())),
        (generated, (file_secret, generated_key.hex())),
    ):
        text = record_of(locations).read_text()
        assert not any(value in text for value in values)
        assert not any(value[:16] in text for value in values)


def test_an_unreadable_record_stops_the_run(tmp_path):
    locations = local(tmp_path)
    record_of(locations).parent.mkdir(parents=True)
    record_of(locations).write_text("not json")
    with pytest.raises(SsnKeyChanged, match="readable SSN key fingerprint"):
        ssn_hash_key(locations)


def test_an_s3_warehouse_records_and_checks_the_fingerprint(monkeypatch):
    moto = pytest.importorskip("moto")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with moto.mock_aws():
        deployment = Settings(env="production", warehouse="s3://lake-bucket/wh/", ssn_hash_key="a")
        s3 = Locations(deployment).s3_client()
        s3.create_bucket(Bucket="lake-bucket")
        key = ssn_hash_key(Locations(deployment))
        body = s3.get_object(Bucket="lake-bucket", Key=f"wh/{FINGERPRINT_PATH}")["Body"].read()
        assert json.loads(body)["fingerprint"] == fingerprint(key)
        assert ssn_hash_key(Locations(deployment)) == key
        with pytest.raises(SsnKeyChanged, match=f"s3://lake-bucket/wh/{FINGERPRINT_PATH}"):
            ssn_hash_key(Locations(deployment.with_overrides(ssn_hash_key="b")))

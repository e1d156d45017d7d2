"""R14 in the decision service: decisions as of a date, from the index's decision history, the
same in Python, the CLI (single and batch) and HTTP; an invalid date is an error, never a
silent answer."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from phone_compliance.cli.main import main
from phone_compliance.schema import ALLOWED, DELETED, NOT_FOUND
from phone_compliance.service import DecisionIndex, IndexNotFound, InvalidKey, decide
from phone_compliance.service.batch import decision_table
from phone_compliance.service.build import build_index
from phone_compliance.service.http import create_app
from phone_compliance_tests.service.conftest import (
    ACCT,
    API_KEY,
    CASES,
    DELETED_PHONE,
    ENRL,
    FIRST_DAY,
)

DELETED_ON = CASES["deleted_soft"][0]["deleted_at"]
DAY = dt.timedelta(days=1)


def test_r14_an_as_of_answer_is_the_interval_holding_that_day(index_dir: Path) -> None:
    index = DecisionIndex(index_dir)
    before = index.decide(ACCT, DELETED_PHONE, FIRST_DAY - DAY)
    assert (before.reason, before.as_of, before.valid_from) == (NOT_FOUND, FIRST_DAY - DAY, None)
    for day in (FIRST_DAY, DELETED_ON - DAY):
        live = index.decide(ACCT, DELETED_PHONE, day)
        assert (live.reason, live.allowed) == (ALLOWED, True)
        assert (live.valid_from, live.valid_to) == (FIRST_DAY, DELETED_ON)
        assert live.presence_file == ENRL  # its deciding files are those of that day
    for day in (DELETED_ON, DELETED_ON + 1000 * DAY):
        gone = index.decide(ACCT, DELETED_PHONE, day.isoformat())
        assert (gone.reason, gone.valid_from, gone.valid_to) == (DELETED, DELETED_ON, None)
        now = index.decide(ACCT, DELETED_PHONE)
        assert gone._replace(as_of=None, valid_from=None, valid_to=None) == now
    assert index.can_send_sms(ACCT, DELETED_PHONE, FIRST_DAY) is True
    assert index.can_send_sms(ACCT, DELETED_PHONE, DELETED_ON) is False


def test_r14_every_pair_as_of_a_late_date_is_its_current_decision(index_dir: Path) -> None:
    index = DecisionIndex(index_dir)
    late = dt.date(2030, 1, 1)
    for row, reason in CASES.values():
        got = decide(row["account_number"], row["phone_number"], as_of=late, index=index)
        assert got.reason == reason
        assert got._replace(as_of=None, valid_from=None, valid_to=None) == index.decide(
            row["account_number"], row["phone_number"]
        )


@pytest.mark.parametrize(
    "bad",
    ["2024-02-30", "2024-1-5", "20240105", "yesterday", "", dt.datetime(2024, 1, 5), 20240105],
)
def test_r14_r11_an_invalid_as_of_date_is_an_error(index_dir: Path, bad: object) -> None:
    with pytest.raises(InvalidKey, match="R14"):
        DecisionIndex(index_dir).decide(ACCT, DELETED_PHONE, bad)  # type: ignore[arg-type]


def test_r14_a_build_without_a_history_refuses_as_of_questions(
    tmp_path: Path, gold_dir: Path
) -> None:
    build_index(gold_dir, tmp_path / "idx", 1)
    index = DecisionIndex(tmp_path / "idx")
    assert index.decide(ACCT, DELETED_PHONE).reason == DELETED
    with pytest.raises(IndexNotFound, match="no decision history"):
        index.decide(ACCT, DELETED_PHONE, FIRST_DAY)


def test_r14_batch_as_of_agrees_with_single_lookups(index_dir: Path) -> None:
    index = DecisionIndex(index_dir)
    pairs = [(row["account_number"], row["phone_number"]) for row, _ in CASES.values()]
    pairs += [(ACCT, "+13125550000"), ("12", "+12125550100")]  # unknown, invalid
    accounts, phones = [a for a, _ in pairs], [p for _, p in pairs]
    for day in (FIRST_DAY - DAY, FIRST_DAY, DELETED_ON - DAY, DELETED_ON, dt.date(2024, 3, 1)):
        table = decision_table(index, accounts, phones, day).to_pylist()
        for (account, phone), got in zip(pairs, table, strict=True):
            if got["error"] is not None:
                continue
            single = index.decide(account, phone, day)
            assert (got["reason"], got["can_send_sms"]) == (single.reason, single.allowed)
            assert got["presence_file"] == single.presence_file
    history = index.require_history()
    rows = history.lookup_at(np.array([int(ACCT)]), np.array([int(DELETED_PHONE[2:])]), FIRST_DAY)
    assert rows.tolist() == [history.find_as_of(ACCT, DELETED_PHONE, FIRST_DAY)]


def test_r14_cli_check_as_of_single_and_batch(
    index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--index", str(index_dir)]
    assert main(["check", ACCT, DELETED_PHONE, "--as-of", FIRST_DAY.isoformat(), *common]) == 0
    assert "stood from 2024-01-10 until 2024-03-15" in capsys.readouterr().out
    day = DELETED_ON.isoformat()
    assert main(["check", ACCT, DELETED_PHONE, "--as-of", day, "--json", *common]) == 1
    got = json.loads(capsys.readouterr().out)
    assert (got["reason"], got["as_of"], got["valid_from"], got["valid_to"]) == (
        DELETED,
        day,
        day,
        None,
    )
    assert main(["check", ACCT, DELETED_PHONE, "--as-of", "2024-13-01", *common]) == 2
    assert "not a date" in capsys.readouterr().err

    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"account_number,phone_number\n{ACCT},{DELETED_PHONE}\n")
    out = tmp_path / "decisions.csv"
    for day, reason in ((FIRST_DAY - DAY, NOT_FOUND), (FIRST_DAY, ALLOWED), (DELETED_ON, DELETED)):
        argv = ["check", "--input", str(pairs), "--output", str(out), "--as-of", str(day)]
        assert main([*argv, "--no-progress", *common]) == 0
        (row,) = csv.DictReader(io.StringIO(out.read_text()))
        assert row["reason"] == reason


def test_r14_http_as_of_single_and_per_pair_in_a_batch(index_dir: Path) -> None:
    app = create_app(index_dir, api_keys=[API_KEY], poll_interval=0)
    headers = {"X-API-Key": API_KEY}
    with TestClient(app) as client:
        query = {"account": ACCT, "phone": DELETED_PHONE, "as_of": FIRST_DAY.isoformat()}
        got = client.get("/v1/sms-permission", params=query, headers=headers)
        assert got.status_code == 200
        body = got.json()
        assert (body["reason"], body["valid_to"]) == (ALLOWED, DELETED_ON.isoformat())

        bad = client.get(
            "/v1/sms-permission", params={**query, "as_of": "2024-02-30"}, headers=headers
        )
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["query", "as_of"]
        assert "2024-02-30" not in bad.text  # the input is not echoed

        pairs = [
            {"account": ACCT, "phone": DELETED_PHONE, "as_of": FIRST_DAY.isoformat()},
            {"account": ACCT, "phone": DELETED_PHONE},
            {"account": ACCT, "phone": DELETED_PHONE, "as_of": "2000-01-01"},
        ]
        batch = client.post("/v1/sms-permission:batch", json={"pairs": pairs}, headers=headers)
        assert batch.status_code == 200
        reasons = [d["reason"] for d in batch.json()["decisions"]]
        assert reasons == [ALLOWED, DELETED, NOT_FOUND]
        assert "as_of" not in batch.json()["decisions"][1]  # asked now: no interval

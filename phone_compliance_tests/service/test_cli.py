"""`phone-compliance check` (single and batch), `index`, and the lazy `run` hand-off."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from phone_compliance import cli
from phone_compliance.schema import ALLOWED, CONSENT_WITHDRAWN, NOT_CLIENT_SOURCED, NOT_FOUND
from phone_compliance.service.batch import OUTPUT_COLUMNS
from phone_compliance_tests.service.conftest import ACCT, CASES, GOLD_VERSION, OTHER_ACCT


def test_r10_check_prints_the_decision_and_exits_by_it(
    index_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    assert cli.main(["check", ACCT, "(212) 555-0100", "--index", str(index_dir)]) == 0
    out = capsys.readouterr().out
    assert "may be sent: ALLOWED" in out and "Gold version 3" in out
    assert cli.main(["check", ACCT, "+1 212 555 0106", "--index", str(index_dir)]) == 1
    out = capsys.readouterr().out
    assert "must NOT be sent: CONSENT_WITHDRAWN" in out
    assert "* consent" in out  # the deciding evidence is marked


def test_r10_check_json(index_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["check", OTHER_ACCT, "12125550100", "--json", "--index", str(index_dir)]) == 1
    body = json.loads(capsys.readouterr().out)
    assert body["reason"] == NOT_CLIENT_SOURCED
    assert body["phone_number"] == "+12125550100"
    assert body["gold_version"] == GOLD_VERSION
    assert body["pair"]["phone_source"] == "OTHER"


def test_r11_check_rejects_input_that_cannot_be_normalized(
    index_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    assert cli.main(["check", ACCT, "555-0100", "--index", str(index_dir)]) == 2
    assert "10 digits" in capsys.readouterr().err
    assert cli.main(["check", "42", "2125550100", "--index", str(index_dir)]) == 2
    assert "16 digits" in capsys.readouterr().err


def test_check_without_an_index_says_so(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["check", ACCT, "2125550100", "--index", str(tmp_path)]) == 3
    assert "no decision index" in capsys.readouterr().err


@pytest.mark.parametrize("header", ["account_number,phone_number", "account,phone"])
def test_r11_batch_check_scrubs_a_csv_in_order_with_errors_per_row(
    index_dir: Path, tmp_path: Path, header: str, capsys: pytest.CaptureFixture
) -> None:
    rows = [(r["account_number"], r["phone_number"]) for r, _ in CASES.values()]
    inputs = [(a, f"({p[2:5]}) {p[5:8]}-{p[8:]}") for a, p in rows]
    inputs += [(ACCT, "2125550199"), (ACCT, "12"), ("0042", "2125550100"), ("", "")]
    source = tmp_path / "pairs.csv"
    with open(source, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header.split(","))
        w.writerows(inputs)
    target = tmp_path / "decisions.csv"
    argv = ["check", "--input", str(source), "--output", str(target), "--index", str(index_dir)]
    assert cli.main(argv) == 0
    assert "invalid=3" in capsys.readouterr().err
    with open(target, newline="") as f:
        out = list(csv.DictReader(f))
    assert tuple(out[0]) == OUTPUT_COLUMNS
    assert [(o["input_account"], o["input_phone"]) for o in out] == inputs
    expected = [reason for _, reason in CASES.values()] + [NOT_FOUND, "", "", ""]
    assert [o["reason"] for o in out] == expected
    assert [o["can_send_sms"] for o in out[: len(rows)]] == [
        "true" if reason == ALLOWED else "false" for _, reason in CASES.values()
    ]
    assert [o["phone_number"] for o in out[: len(rows)]] == [p for _, p in rows]
    assert "R3" in out[-3]["error"] and "R2" in out[-2]["error"]
    assert "R2" in out[-1]["error"] and "R3" in out[-1]["error"]
    assert out[-3]["can_send_sms"] == ""  # an invalid row is no decision, not a silent FALSE
    assert {o["gold_version"] for o in out} == {str(GOLD_VERSION)}


def test_batch_check_reads_gzip_and_writes_stdout(index_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "pairs.csv.gz"
    with gzip.open(source, "wt") as f:
        f.write("phone,account,campaign\n+1 212 555 0106," + ACCT + ",spring\n")
    run = subprocess.run(
        [sys.executable, "-m", "phone_compliance.cli", "check", "--input", str(source),
         "--index", str(index_dir), "--no-progress"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    [row] = list(csv.DictReader(run.stdout.splitlines()))
    assert row["reason"] == CONSENT_WITHDRAWN
    assert "1 rows" in run.stderr


def test_batch_check_needs_a_header_naming_account_and_phone(
    index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    source = tmp_path / "pairs.csv"
    source.write_text("acct,number\n1,2\n")
    argv = ["check", "--input", str(source), "--output", "-", "--index", str(index_dir)]
    assert cli.main(argv) == 2
    assert "must name the account" in capsys.readouterr().err


def test_index_build_and_info(gold_dir: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "idx"
    argv = ["index", "build", str(gold_dir), "--gold-version", "9", "--index", str(target)]
    assert cli.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["gold_version"] == 9
    assert cli.main(["index", "info", "--index", str(target)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["pairs"] == len(CASES)


def test_run_hands_off_to_the_pipeline_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    from phone_compliance.cli import run

    seen = []
    monkeypatch.setattr(run, "run", lambda args: seen.append(args) or 0)
    assert cli.main(["run", "--landing", "s3a://in", "--warehouse", "/wh"]) == 0
    assert cli.main(["run"]) == 0
    assert [(a.landing, a.warehouse) for a in seen] == [("s3a://in", "/wh"), (None, None)]


def test_check_loads_neither_spark_nor_dagster(index_dir: Path) -> None:
    code = (
        "import sys\nfrom phone_compliance import cli\n"
        f"rc = cli.main(['check', '{ACCT}', '2125550100', '--index', {str(index_dir)!r}])\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pyspark', 'dagster', 'pyarrow')]\n"
        "assert rc == 0 and not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)

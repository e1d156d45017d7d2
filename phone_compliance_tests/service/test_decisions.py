"""The in-process decision API: R10 from Gold, R11 input normalization, R12 lineage."""

from __future__ import annotations

import ast
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

import phone_compliance.service as service
from phone_compliance.schema import (
    ALLOWED,
    DECISION_REASONS,
    DELETED,
    NOT_CLIENT_SOURCED,
    NOT_FOUND,
)
from phone_compliance.service import (
    Decision,
    DecisionIndex,
    InvalidKey,
    can_send_sms,
    decide,
    default_index_dir,
)
from phone_compliance.service.decisions import PAIR_FIELDS
from phone_compliance.settings import PROJECT_ROOT
from phone_compliance_tests.service.conftest import (
    ACCT,
    CASES,
    CHANGE,
    GOLD_VERSION,
    OTHER_ACCT,
    SNAP,
    gold_row,
    write_gold,
)


@pytest.mark.parametrize("case", sorted(CASES))
def test_r10_decision_is_golds_for_every_pair(index_dir: Path, case: str) -> None:
    row, reason = CASES[case]
    index = DecisionIndex(index_dir)
    decision = index.decide(row["account_number"], row["phone_number"])
    assert decision.reason == reason == row["reason"]
    assert decision.allowed is (reason == ALLOWED) is row["can_send_sms"]
    assert index.can_send_sms(row["account_number"], row["phone_number"]) is decision.allowed
    for field in PAIR_FIELDS:
        assert getattr(decision, field) == row[field], field
    assert decision.gold_version == GOLD_VERSION


def test_r10_every_reason_is_reachable(index_dir: Path) -> None:
    index = DecisionIndex(index_dir)
    seen = {index.decide(r["account_number"], r["phone_number"]).reason for r, _ in CASES.values()}
    seen.add(index.decide(ACCT, "+12125550199").reason)
    assert seen == set(DECISION_REASONS)


def test_r10_absent_pair_is_not_found_with_no_gold_fields(index_dir: Path) -> None:
    decision = DecisionIndex(index_dir).decide(ACCT, "(212) 555-0199")
    assert (decision.allowed, decision.reason) == (False, NOT_FOUND)
    assert not decision.found
    assert all(getattr(decision, f) is None for f in PAIR_FIELDS)
    assert decision.evidence == ()
    assert decision.to_dict()["pair"] is None
    assert decision.gold_version == GOLD_VERSION


def test_r10_order_non_client_deleted_pair_is_not_client_sourced(index_dir: Path) -> None:
    decision = DecisionIndex(index_dir).decide(ACCT, "+12125550103")
    assert decision.is_deleted is True
    assert decision.reason == NOT_CLIENT_SOURCED


def test_r10_order_deleted_beats_consent_withdrawn(index_dir: Path) -> None:
    decision = DecisionIndex(index_dir).decide(ACCT, "+12125550105")
    assert decision.has_sms_consent is False
    assert decision.reason == DELETED


def test_r4_same_phone_on_two_accounts_is_two_pairs(index_dir: Path) -> None:
    index = DecisionIndex(index_dir)
    assert index.decide(ACCT, "+12125550100").reason == ALLOWED
    assert index.decide(OTHER_ACCT, "+12125550100").reason == NOT_CLIENT_SOURCED
    assert index.decide(OTHER_ACCT, "+12125550101").reason == NOT_FOUND


def test_r10_gold_is_authoritative_nothing_is_rederived(tmp_path: Path) -> None:
    # A row whose fields would pass R10 but whose Gold decision says DELETED: Gold wins.
    row = gold_row(ACCT, "+12125550100", can_send_sms=False, reason=DELETED)
    index_dir = tmp_path / "idx"
    from phone_compliance.service import build_index

    build_index(write_gold(tmp_path / "gold", [row]), index_dir, 1)
    decision = DecisionIndex(index_dir).decide(ACCT, "+12125550100")
    assert (decision.allowed, decision.reason) == (False, DELETED)


@pytest.mark.parametrize(
    "phone",
    [
        "+12125550100",
        "(212) 555-0100",
        "+1 212 555 0100",
        "12125550100",
        "2125550100",
        "212.555.0100",
        "+1-212-555-0100",
        " 212 555 0100 ",
    ],
)
def test_r11_phone_inputs_are_normalized_like_the_data(index_dir: Path, phone: str) -> None:
    index = DecisionIndex(index_dir)
    decision = index.decide(ACCT, phone)
    assert decision.phone_number == "+12125550100"
    assert decision.reason == ALLOWED
    assert index.can_send_sms(f"  {ACCT} ", phone) is True


@pytest.mark.parametrize(
    ("account", "phone", "why"),
    [
        (ACCT, "555-0100", "10 digits"),
        (ACCT, "", "10 digits"),
        (ACCT, "22125550100", "10 digits"),  # 11 digits not starting with 1
        (ACCT, "(112) 555-0100", "area code and exchange"),
        (ACCT, "(212) 155-0100", "area code and exchange"),
        ("123456789012345", "2125550100", "16 digits"),
        ("12345678901234567", "2125550100", "16 digits"),
        ("1234-5678-9012-3456", "2125550100", "16 digits"),
        ("", "2125550100", "16 digits"),
    ],
)
def test_r11_input_that_cannot_be_normalized_is_an_error_saying_why(
    index_dir: Path, account: str, phone: str, why: str
) -> None:
    index = DecisionIndex(index_dir)
    for call in (index.decide, index.can_send_sms):
        with pytest.raises(InvalidKey, match=why):
            call(account, phone)


def test_r12_decision_names_the_deciding_files_dates_and_gold_version(index_dir: Path) -> None:
    index = DecisionIndex(index_dir)
    deleted = index.decide(ACCT, "+12125550104")
    [deciding] = deleted.deciding_evidence
    assert (deciding.role, deciding.file, deciding.file_date, deciding.date) == (
        "deletion",
        CHANGE,
        dt.date(2024, 3, 15),
        dt.date(2024, 3, 15),
    )
    allowed = index.decide(ACCT, "+12125550101")
    roles = {e.role: e for e in allowed.evidence}
    assert set(roles) == {"attributes", "presence", "consent"}
    assert all(e.deciding for e in roles.values())
    assert roles["presence"].file == SNAP and roles["presence"].file_date == dt.date(2024, 3, 1)
    payload = allowed.to_dict()
    assert payload["gold_version"] == GOLD_VERSION
    assert payload["index_id"] == index.index_id
    assert payload["index_id"].startswith(f"v{GOLD_VERSION}-")
    json.dumps(payload)  # JSON-ready
    assert "Gold version 3" in allowed.explain()


def test_decision_has_no_truth_value(index_dir: Path) -> None:
    # `if decide(...)` must never send to a denied number: force `.allowed`.
    decision = DecisionIndex(index_dir).decide(ACCT, "+12125550106")
    assert isinstance(decision, Decision)
    with pytest.raises(TypeError):
        bool(decision)


def test_module_level_api_follows_the_index_location(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert can_send_sms(ACCT, "(212) 555-0100", index=index_dir) is True
    assert decide(ACCT, "(212) 555-0106", index=str(index_dir)).reason == "CONSENT_WITHDRAWN"
    monkeypatch.setenv("PHONE_COMPLIANCE_INDEX", str(index_dir))
    assert default_index_dir() == index_dir
    assert decide(ACCT, "2125550102").reason == NOT_CLIENT_SOURCED
    index = DecisionIndex(index_dir)
    assert decide(ACCT, "2125550102", index=index).reason == NOT_CLIENT_SOURCED


def test_default_index_dir_is_local_under_the_warehouse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PHONE_COMPLIANCE_INDEX", raising=False)
    monkeypatch.delenv("PHONE_COMPLIANCE_WAREHOUSE", raising=False)
    # Where the pipeline publishes it, from whatever directory the service starts in.
    project_index = PROJECT_ROOT / "warehouse" / "serving" / "decision_index"
    assert default_index_dir() == project_index
    monkeypatch.setenv("PHONE_COMPLIANCE_WAREHOUSE", "/data/wh")
    assert default_index_dir() == Path("/data/wh/serving/decision_index")
    monkeypatch.setenv("PHONE_COMPLIANCE_WAREHOUSE", "s3a://bucket/wh")
    assert default_index_dir() == project_index
    monkeypatch.setenv("PHONE_COMPLIANCE_INDEX", "/srv/idx")
    assert default_index_dir() == Path("/srv/idx")


def test_service_imports_no_pyspark_and_no_dagster() -> None:
    code = (
        "import sys\n"
        "import phone_compliance.service, phone_compliance.service.http\n"
        "import phone_compliance.service.batch, phone_compliance.cli\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pyspark', 'dagster', 'py4j')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_importing_the_service_loads_neither_pyarrow_nor_fastapi() -> None:
    # `import phone_compliance.service` must stay light: pyarrow only when an index is built,
    # FastAPI only for `service.http`.
    code = (
        "import sys\n"
        "import phone_compliance.service\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pyarrow', 'fastapi', 'pydantic')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_service_modules_import_each_other_one_way() -> None:
    # Every import between the service's modules, at module level or inside a function (an
    # import hidden in a function to dodge a cycle is still a cycle), must form no cycle.
    package = Path(service.__file__).parent
    edges: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        edges[module] = {m for m in imported if m.startswith(service.__name__ + ".")}
    assert "phone_compliance.service.api" in edges

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    cycles = [m for m in edges if reaches(m, m, {m})]
    assert cycles == []

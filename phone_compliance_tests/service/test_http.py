"""The HTTP API: auth, R10/R11 over HTTP, readiness, OpenAPI fuzzing, index swaps under load."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
import schemathesis
import uvicorn
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from phone_compliance.schema import ALLOWED, CONSENT_WITHDRAWN, DELETED, NOT_FOUND
from phone_compliance.service import build_index
from phone_compliance.service.http import MAX_BATCH, ApiKeys, create_app
from phone_compliance.service.http.errors import validation_errors
from phone_compliance_tests.processes import free_port
from phone_compliance_tests.service.conftest import (
    ACCT,
    API_KEY,
    CASES,
    GOLD_VERSION,
    gold_row,
    write_gold,
)

AUTH = {"X-API-Key": API_KEY}
URL = "/v1/sms-permission"
BATCH_URL = "/v1/sms-permission:batch"


@pytest.fixture(params=[True, False], ids=["fast_path", "fastapi_route"])
def client(index_dir: Path, request: pytest.FixtureRequest):
    # every HTTP test runs against both ways of serving the single lookup
    with TestClient(create_app(index_dir, api_keys=[API_KEY], fast_path=request.param)) as c:
        yield c


@pytest.mark.parametrize(
    "query",
    [
        "account=1234567890123456&phone=%28212%29%20555-0100",
        "account=1234567890123456&phone=2125550106",
        "account=1234567890123456&phone=2125550199",
        "account=1234567890123456&phone=2125550199&phone=2125550100",  # last value wins
        "account=1234567890123456&phone=",
        "account=12&phone=12",
        "phone=2125550100",
        "",
        "account=%FF%FE&phone=%E2%98%8E",
    ],
)
@pytest.mark.parametrize("headers", [AUTH, {}])
def test_fast_path_answers_exactly_as_the_fastapi_route(
    index_dir: Path, query: str, headers: dict
) -> None:
    answers = []
    for fast in (True, False):
        with TestClient(create_app(index_dir, api_keys=[API_KEY], fast_path=fast)) as c:
            r = c.get(f"{URL}?{query}", headers=headers)
            answers.append((r.status_code, r.json(), r.headers.get("www-authenticate")))
    assert answers[0] == answers[1]


def test_health_and_readiness(client: TestClient, tmp_path: Path) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["gold_version"] == GOLD_VERSION
    with TestClient(create_app(tmp_path / "nothing", api_keys=[API_KEY])) as empty:
        assert empty.get("/healthz").status_code == 200
        assert empty.get("/readyz").status_code == 503
        # decisions without an index: unavailable, not an error and not a silent FALSE
        params = {"account": ACCT, "phone": "2125550100"}
        assert empty.get(URL, params=params, headers=AUTH).status_code == 503


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": ""}, {"X-API-Key": "wrong"}, {"X-API-Key": API_KEY + "x"}],
)
def test_decision_endpoints_need_an_api_key(client: TestClient, headers: dict) -> None:
    params = {"account": ACCT, "phone": "2125550100"}
    assert client.get(URL, params=params, headers=headers).status_code == 401
    body = {"pairs": [{"account": ACCT, "phone": "2125550100"}]}
    assert client.post(BATCH_URL, json=body, headers=headers).status_code == 401
    assert client.get("/v1/index", headers=headers).status_code == 401


def test_api_key_that_is_not_ascii_is_a_401_not_a_500(client: TestClient) -> None:
    headers = {"X-API-Key": "cl\u00e9".encode("latin-1")}
    response = client.get(URL, params={"account": ACCT, "phone": "2125550100"}, headers=headers)
    assert response.status_code == 401


def test_api_keys_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# ops keys\nfile-key-1\n\n  file-key-2  \n")
    monkeypatch.setenv("PHONE_COMPLIANCE_API_KEYS", "env-a, env-b")
    monkeypatch.setenv("PHONE_COMPLIANCE_API_KEYS_FILE", str(key_file))
    keys = ApiKeys.from_env()
    assert all(keys.check(k) for k in ("env-a", "env-b", "file-key-1", "file-key-2"))
    assert not any(keys.check(k) for k in ("", None, "# ops keys", "env-a, env-b", "file-key"))
    assert not ApiKeys().check("anything")  # no keys configured: fail closed


@pytest.mark.parametrize("case", sorted(CASES))
def test_r10_single_lookup_over_http(client: TestClient, case: str) -> None:
    row, reason = CASES[case]
    phone = row["phone_number"]
    pretty = f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}"
    params = {"account": row["account_number"], "phone": pretty}
    response = client.get(URL, params=params, headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert (body["can_send_sms"], body["reason"]) == (reason == ALLOWED, reason)
    assert body["phone_number"] == phone
    assert body["gold_version"] == GOLD_VERSION
    assert body["pair"]["phone_source"] == row["phone_source"]
    assert any(e["deciding"] for e in body["evidence"])


@pytest.mark.parametrize(
    ("params", "field", "why"),
    [
        ({"account": ACCT, "phone": "555-0100"}, "phone", "10 digits"),
        ({"account": ACCT, "phone": "(112) 555-0100"}, "phone", "area code"),
        ({"account": "12345", "phone": "2125550100"}, "account", "16 digits"),
        ({"account": ACCT}, "phone", "required"),
        ({"phone": "2125550100"}, "account", "required"),
    ],
)
def test_r11_invalid_input_is_a_422_naming_the_field(
    client: TestClient, params: dict, field: str, why: str
) -> None:
    response = client.get(URL, params=params, headers=AUTH)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", field]
    assert why in error["msg"]
    assert not any(value in response.text for value in params.values())


SECRET_ACCOUNT, SECRET_PHONE = "98765", "(312) 155-0199"  # an invalid account, an invalid phone


def _assert_echoes_nothing(response: httpx.Response, *values: str) -> None:
    assert response.status_code == 422
    for item in response.json()["detail"]:
        assert set(item) == {"loc", "msg", "type"}  # no `input`, no `ctx`
    for value in values:
        assert value not in response.text


def test_r11_a_422_names_the_field_and_the_rule_never_the_value(client: TestClient) -> None:
    phone_rule = "area code and exchange each start with 2-9 (R3)"
    secret = {"account": SECRET_ACCOUNT, "phone": SECRET_PHONE}
    single = client.get(URL, params=secret, headers=AUTH)
    _assert_echoes_nothing(single, SECRET_ACCOUNT, SECRET_PHONE, "3121550199")
    account, phone = single.json()["detail"]
    assert account == {
        "loc": ["query", "account"],
        "msg": "account: not 16 digits (R2)",
        "type": "value_error",
    }
    assert phone["loc"] == ["query", "phone"] and phone["msg"].endswith(phone_rule)
    pairs = [{"account": ACCT, "phone": "2125550100"}, secret]
    batch = client.post(BATCH_URL, json={"pairs": pairs}, headers=AUTH)
    _assert_echoes_nothing(batch, SECRET_ACCOUNT, SECRET_PHONE, "3121550199")
    assert [e["loc"] for e in batch.json()["detail"]] == [
        ["body", "pairs", 1, "account"],
        ["body", "pairs", 1, "phone"],
    ]
    assert [e["msg"] for e in batch.json()["detail"]] == [account["msg"], phone["msg"]]


@pytest.mark.parametrize(
    "body",
    [
        b'{"pairs": [{"account": 9876543210987654, "phone": 3125550199}]}',  # numbers
        b'{"pairs": [{"account": "9876543210987654"}]}',  # phone missing
        b'{"pairs": {"account": "9876543210987654", "phone": "3125550199"}}',  # not a list
        b'{"pairs": [["9876543210987654", "3125550199"]]}',  # not an object
        b'{"pairs": [{"account": "9876543210987654", "phone": "31255501',  # not JSON
        b'["9876543210987654", "3125550199"]',
    ],
)
def test_a_malformed_body_is_a_422_that_echoes_nothing(client: TestClient, body: bytes) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    response = client.post(BATCH_URL, content=body, headers=headers)
    _assert_echoes_nothing(response, "9876543210987654", "3125550199", "31255501")
    assert all(e["loc"][0] == "body" for e in response.json()["detail"])


def test_a_validation_message_that_quotes_the_input_is_replaced() -> None:
    quoting = {
        "type": "union_tag_invalid",
        "loc": ("body", "pairs", 0),
        "msg": "Input tag '9876543210987654' found using 'kind' does not match any expected tag",
        "input": "9876543210987654",
        "ctx": {"tag": "9876543210987654"},
    }
    [item] = validation_errors([quoting])
    assert item == {
        "loc": ["body", "pairs", 0],
        "msg": "invalid input (union_tag_invalid)",
        "type": "union_tag_invalid",
    }


def test_batch_returns_decisions_in_input_order(client: TestClient) -> None:
    rows = [row for row, _ in CASES.values()]
    pairs = [{"account": r["account_number"], "phone": r["phone_number"][2:]} for r in rows]
    pairs.append({"account": ACCT, "phone": "+1 212 555 0199"})
    response = client.post(BATCH_URL, json={"pairs": pairs}, headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == len(pairs)
    assert body["gold_version"] == GOLD_VERSION
    got = [d["reason"] for d in body["decisions"]]
    assert got == [reason for _, reason in CASES.values()] + [NOT_FOUND]


def test_batch_with_an_invalid_pair_is_a_422_naming_it(client: TestClient) -> None:
    pairs = [
        {"account": ACCT, "phone": "2125550100"},
        {"account": ACCT, "phone": "12"},
        {"account": "x", "phone": "2125550100"},
    ]
    response = client.post(BATCH_URL, json={"pairs": pairs}, headers=AUTH)
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["detail"]]
    assert locs == [["body", "pairs", 1, "phone"], ["body", "pairs", 2, "account"]]
    wrong_type = client.post(BATCH_URL, json={"pairs": [{"account": 1, "phone": 2}]}, headers=AUTH)
    assert wrong_type.status_code == 422


def test_batch_is_limited_to_ten_thousand_pairs(client: TestClient) -> None:
    pair = {"account": ACCT, "phone": "2125550100"}
    ok = client.post(BATCH_URL, json={"pairs": [pair] * MAX_BATCH}, headers=AUTH)
    assert ok.status_code == 200 and ok.json()["count"] == MAX_BATCH
    too_many = client.post(BATCH_URL, json={"pairs": [pair] * (MAX_BATCH + 1)}, headers=AUTH)
    assert too_many.status_code == 422
    [error] = too_many.json()["detail"]
    assert error["loc"] == ["body", "pairs"] and "10000" in error["msg"]
    assert len(too_many.content) < 1000  # the 10,001 pairs are not echoed back


def test_openapi_declares_the_api_key_scheme(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert {URL, BATCH_URL, "/healthz", "/readyz"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_every_path_but_health_readiness_and_docs_needs_the_key(client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs", "/redoc"):
        assert client.get(path).status_code == 200, path
    assert client.get("/no-such-path").status_code == 401  # fail closed
    assert client.get("/no-such-path", headers=AUTH).status_code == 404


def test_api_docs_can_be_turned_off(index_dir: Path) -> None:
    with TestClient(create_app(index_dir, api_keys=[API_KEY], docs=False)) as c:
        for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"):
            assert c.get(path).status_code == 401, path  # no longer an open path
            assert c.get(path, headers=AUTH).status_code == 404, path
        assert c.get("/healthz").status_code == 200
        params = {"account": ACCT, "phone": "2125550100"}
        assert c.get(URL, params=params, headers=AUTH).json()["reason"] == ALLOWED


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_body_over_the_limit_is_a_413_announced_or_chunked(
    index_dir: Path, fast_path: bool
) -> None:
    app = create_app(index_dir, api_keys=[API_KEY], max_body_bytes=2000, fast_path=fast_path)
    pair = {"account": ACCT, "phone": "2125550100"}
    small = json.dumps({"pairs": [pair] * 10}).encode()
    big = json.dumps({"pairs": [pair] * 100}).encode()
    assert len(small) < 2000 < len(big)
    headers = {**AUTH, "Content-Type": "application/json"}
    with TestClient(app) as c:
        assert c.post(BATCH_URL, content=small, headers=headers).json()["count"] == 10
        assert c.post(BATCH_URL, content=iter([small]), headers=headers).json()["count"] == 10
        too_big = c.post(BATCH_URL, content=big, headers=headers)
        assert too_big.status_code == 413 and "2000 bytes" in too_big.json()["detail"]
        chunked = c.post(BATCH_URL, content=iter([big[:1500], big[1500:]]), headers=headers)
        assert chunked.status_code == 413
        assert c.post(BATCH_URL, content=big).status_code == 401  # the key is checked first


# --- schemathesis: no generated request gives a 500 ------------------------------------


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_openapi_fuzzing_finds_no_server_error(index_dir: Path, mode: str) -> None:
    app = create_app(index_dir, api_keys=[API_KEY])
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    strategy = schema.as_strategy(generation_mode=GenerationMode(mode))
    calls = []

    @given(case=strategy)
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    def fuzz(case) -> None:
        for headers in (AUTH, {}):  # with and without the key
            response = case.call_and_validate(headers=headers, checks=[not_a_server_error])
            calls.append((case.path, response.status_code))

    fuzz()
    covered = {URL, BATCH_URL} | ({"/readyz", "/healthz"} if mode == "positive" else set())
    assert {path for path, _ in calls} >= covered
    assert all(status < 500 for _, status in calls)


# --- index swap under concurrent requests ---------------------------------------------


def test_index_swap_under_concurrent_requests_loses_none(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    phone = "+12125550100"

    def publish(version: int) -> None:
        # even versions allow the pair, odd ones deny it: each answer tells which build served it
        reason = ALLOWED if version % 2 == 0 else CONSENT_WITHDRAWN
        rows = [
            gold_row(ACCT, phone, can_send_sms=reason == ALLOWED, reason=reason),
            *[gold_row(ACCT, f"+1212555{1000 + i:04d}") for i in range(2000)],
        ]
        build_index(write_gold(tmp_path / f"gold{version}", rows), target, version, keep=2)

    publish(0)
    app = create_app(target, api_keys=[API_KEY], poll_interval=0.05)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started

    stop = threading.Event()
    failures: list[str] = []
    answers: list[tuple[int, str]] = []

    def hammer() -> None:
        with httpx.Client(base_url=base, headers=AUTH, timeout=30) as http:
            while not stop.is_set():
                try:
                    r = http.get(URL, params={"account": ACCT, "phone": "(212) 555-0100"})
                except httpx.HTTPError as e:
                    failures.append(repr(e))
                    continue
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                    continue
                body = r.json()
                answers.append((body["gold_version"], body["reason"]))

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for w in workers:
        w.start()

    def served(version: int) -> None:
        """Wait (on answers, not on a clock) until some request was answered from `version`."""
        until = time.monotonic() + 30
        while time.monotonic() < until and not any(v == version for v, _ in answers[-200:]):
            time.sleep(0.02)

    try:
        for version in range(1, 6):
            served(version - 1)  # each swap happens under traffic served by the build before
            publish(version)
        served(5)
    finally:
        stop.set()
        for w in workers:
            w.join()
        server.should_exit = True
        thread.join(timeout=30)

    assert failures == []
    # The newest build was served (a request already in flight on another thread may still
    # answer from the build before it, so the last answer need not be version 5).
    assert answers and any(v == 5 for v, _ in answers)
    versions = {v for v, _ in answers}
    assert {0, 5} <= versions and len(versions) >= 3  # swaps happened under traffic
    for version, reason in answers:  # every answer is consistent with the build it names
        assert reason == (ALLOWED if version % 2 == 0 else CONSENT_WITHDRAWN)
    assert DELETED not in {r for _, r in answers}

"""The request guard: key and body size checked before the body is read; the real server under a
50 MB body without a key and under 200 concurrent connections."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from phone_compliance.service import build_index
from phone_compliance.service.http import MAX_BATCH, MAX_BODY_BYTES, ApiKeys
from phone_compliance.service.http.guard import RequestGuard
from phone_compliance_tests.processes import free_port
from phone_compliance_tests.service.conftest import ACCT, API_KEY, CASES, GOLD_VERSION, write_gold

AUTH = {"X-API-Key": API_KEY}
URL = "/v1/sms-permission"
BATCH_URL = "/v1/sms-permission:batch"
MB = 1 << 20


# --- the guard alone, as ASGI ----------------------------------------------------------------


def _scope(path: str = BATCH_URL, headers: dict[str, str] | None = None) -> dict[str, Any]:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    return {"type": "http", "method": "POST", "path": path, "query_string": b"", "headers": raw}


async def _never_receive() -> dict[str, Any]:
    raise AssertionError("the body was received")


async def _unreachable_app(scope, receive, send) -> None:
    raise AssertionError("the request reached the app")


def _call(guard: RequestGuard, scope: dict[str, Any], receive: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    return sent


def _status_and_body(sent: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    [start, body] = sent
    return start["status"], json.loads(body["body"])


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"Content-Length": "52428800"}])
def test_a_request_without_a_valid_key_is_refused_before_its_body_is_received(
    headers: dict[str, str],
) -> None:
    guard = RequestGuard(_unreachable_app, keys=ApiKeys([API_KEY]), open_paths=["/healthz"])
    status, body = _status_and_body(_call(guard, _scope(headers=headers), _never_receive))
    assert status == 401 and "X-API-Key" in body["detail"]


def test_an_announced_body_over_the_limit_is_refused_before_it_is_received() -> None:
    guard = RequestGuard(
        _unreachable_app, keys=ApiKeys([API_KEY]), open_paths=[], max_body_bytes=1000
    )
    scope = _scope(headers={**AUTH, "Content-Length": "1001"})
    status, body = _status_and_body(_call(guard, scope, _never_receive))
    assert status == 413 and "1000 bytes" in body["detail"]


def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_limit() -> None:
    chunk, limit = 1000, 10_500
    pulled = 0

    async def endless_body() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * chunk, "more_body": True}

    async def app_reading_the_whole_body(scope, receive, send) -> None:
        while (await receive()).get("more_body"):
            pass
        raise AssertionError("an endless body was read to its end")

    guard = RequestGuard(
        app_reading_the_whole_body, keys=ApiKeys([API_KEY]), open_paths=[], max_body_bytes=limit
    )
    status, _ = _status_and_body(_call(guard, _scope(headers=AUTH), endless_body))
    assert status == 413
    assert pulled == limit // chunk + 1  # the first chunk past the limit was the last one read


def test_the_apps_own_answer_to_a_cut_off_body_is_replaced_by_the_413() -> None:
    async def app_answering_400(scope, receive, send) -> None:
        try:
            await receive()
        except Exception:
            # FastAPI turns a failure to read the body into a 400 of its own
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})

    async def big_chunk() -> dict[str, Any]:
        return {"type": "http.request", "body": b"x" * 2000, "more_body": False}

    guard = RequestGuard(
        app_answering_400, keys=ApiKeys([API_KEY]), open_paths=[], max_body_bytes=1000
    )
    status, _ = _status_and_body(_call(guard, _scope(headers=AUTH), big_chunk))
    assert status == 413


def test_open_paths_need_no_key_and_a_body_within_the_limit_reaches_the_app() -> None:
    reached = []

    async def app(scope, receive, send) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def small_body() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    guard = RequestGuard(app, keys=ApiKeys([API_KEY]), open_paths=["/healthz"], max_body_bytes=10)
    assert _call(guard, _scope("/healthz"), small_body)[0]["status"] == 200
    assert _call(guard, _scope(headers=AUTH), small_body)[0]["status"] == 200
    assert reached == ["/healthz", BATCH_URL]


def test_the_body_limit_holds_a_full_batch_with_room_to_spare() -> None:
    # MAX_BATCH pairs, indented, with the longest common phone format, fit at least twice over.
    pair = {"account": ACCT, "phone": "+1 (212) 555-0100"}
    full_batch = json.dumps({"pairs": [pair] * MAX_BATCH}, indent=4).encode()
    assert 2 * len(full_batch) < MAX_BODY_BYTES


# --- the real server ---------------------------------------------------------------------


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """`serve` in its own process on a free loopback port: (base URL, pid)."""
    base = tmp_path_factory.mktemp("server")
    gold = write_gold(base / "gold", [row for row, _ in CASES.values()])
    index_dir = base / "index"
    build_index(gold, index_dir, GOLD_VERSION)
    port = free_port()
    code = (
        "import sys\n"
        "from phone_compliance.service.http import serve\n"
        "serve(sys.argv[1], port=int(sys.argv[2]), log_level='warning')\n"
    )
    env = {**os.environ, "PHONE_COMPLIANCE_API_KEYS": API_KEY}
    env.pop("PHONE_COMPLIANCE_API_KEYS_FILE", None)
    log = base / "server.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(index_dir), str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a bound on waiting, not a figure under test
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError(f"the server did not become ready:\n{log.read_text()}")
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _fifty_mb_batch() -> bytes:
    pair = {"account": ACCT, "phone": "2125550100"}
    return json.dumps({"pairs": [pair] * (50 * MB // 50)}).encode()


def _chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


@pytest.mark.parametrize(
    ("key", "chunked", "status"),
    [(False, False, 401), (False, True, 401), (True, False, 413), (True, True, 413)],
    ids=["no_key", "no_key_chunked", "key_over_limit", "key_over_limit_chunked"],
)
def test_a_50_mb_body_leaves_the_servers_memory_flat(
    server: tuple[str, int], key: bool, chunked: bool, status: int
) -> None:
    url, pid = server
    body = _fifty_mb_batch()
    headers = {"Content-Type": "application/json", **(AUTH if key else {})}
    with httpx.Client(base_url=url, timeout=120) as http:
        small = {"pairs": [{"account": ACCT, "phone": "2125550100"}]}
        for auth in (AUTH, {}):  # the same code paths once, with a small body, before measuring
            http.post(BATCH_URL, json=small, headers=auth)
        before = _rss_mb(pid)
        response = http.post(BATCH_URL, content=_chunks(body) if chunked else body, headers=headers)
        after = _rss_mb(pid)
        assert response.status_code == status, response.text[:300]
        assert after - before < 20, f"RSS {before:.0f} MB -> {after:.0f} MB"
        # the same connection serves the next request
        params = {"account": ACCT, "phone": "2125550100"}
        assert http.get(URL, params=params, headers=AUTH).status_code == 200


def test_2000_requests_over_200_connections_get_no_server_error(server: tuple[str, int]) -> None:
    url, _ = server
    pair = {"account": ACCT, "phone": "(212) 555-0100"}
    requests = [  # (method, path, params, json body, headers, expected status)
        ("GET", URL, pair, None, AUTH, 200),
        ("GET", URL, {"account": ACCT, "phone": "555-0100"}, None, AUTH, 422),
        ("GET", URL, pair, None, {}, 401),
        ("POST", BATCH_URL, None, {"pairs": [pair] * 20}, AUTH, 200),
        ("GET", "/readyz", None, None, {}, 200),
    ]
    connections, per_connection = 200, 10

    async def load() -> tuple[list[tuple[int, int]], list[str]]:
        answers: list[tuple[int, int]] = []
        failures: list[str] = []
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        timeout = httpx.Timeout(120, pool=None)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as http:

            async def worker(w: int) -> None:
                for i in range(per_connection):
                    method, path, params, body, headers, expected = requests[(w + i) % 5]
                    try:
                        r = await http.request(
                            method, path, params=params, json=body, headers=headers
                        )
                    except httpx.HTTPError as e:
                        failures.append(f"{method} {path}: {e!r}")
                        continue
                    answers.append((r.status_code, expected))

            await asyncio.gather(*(worker(w) for w in range(connections)))
        return answers, failures

    answers, failures = asyncio.run(load())
    assert failures == []
    assert len(answers) == connections * per_connection
    assert [status for status, _ in answers if status >= 500] == []
    assert all(status == expected for status, expected in answers)
    assert httpx.get(f"{url}/healthz").status_code == 200

"""The console's HTTP server over a real engine: the page and its assets (no external
resources), /api/state, the operator actions, every validation error (a 4xx naming what was
wrong, nothing changed, the server still up), the token, the host and origin guards, /metrics,
control-plane errors and the server's lifecycle."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from sor.errors import ConfigError, ConsoleError
from sor.monitor.console import ConsoleServer, EngineConsoleControl

STATE_KEYS = {"ts_ns", "router", "risk", "model", "venues", "parents", "totals", "events"}


def call(server: ConsoleServer, method: str, path: str, body: Any = None, *,
         raw: bytes | None = None, headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], Any]:
    """Sends one request; returns the status, the headers and the JSON body (bytes when the
    answer is not JSON)."""
    headers = dict(headers or {})
    if body is not None:
        raw = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request(method, path, body=raw, headers=headers)
        response = connection.getresponse()
        data = response.read()
        answer_headers = {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()
    if answer_headers.get("content-type") == "application/json":
        return response.status, answer_headers, json.loads(data)
    return response.status, answer_headers, data


def state_of(server: ConsoleServer) -> dict[str, Any]:
    status, _, body = call(server, "GET", "/api/state")
    assert status == 200, body
    return body


def engine_risk_state(engine) -> str:
    return str(engine.counters()["risk_state"]).upper()


def test_page_and_assets_are_served_with_no_external_resource(control, console_server) -> None:
    server = console_server(control)
    status, headers, page = call(server, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in headers["content-security-policy"]
    html = page.decode()
    for element_id in ("risk-state", "model-mode", "kill-switch", "operator", "reason", "confirm",
                       "venues", "events", "chart-filled", "chart-is", "chart-rates", "parents"):
        assert f'id="{element_id}"' in html, element_id
    references = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert references and all(ref.startswith("/") or ref.startswith("data:")
                              for ref in references), references
    for path, content_type in (("/console.js", "text/javascript"), ("/console.css", "text/css")):
        status, headers, asset = call(server, "GET", path)
        assert status == 200 and headers["content-type"].startswith(content_type)
        assert b"http://" not in asset and b"https://" not in asset and b"//cdn" not in asset
    assert call(server, "GET", "/nope")[0] == 404


def test_state_is_the_engines(engine, control, console_server) -> None:
    server = console_server(control)
    state = state_of(server)
    assert STATE_KEYS <= set(state)
    assert state["router"]["name"] == engine.name
    assert state["router"]["engine_state"] == "running"
    assert state["risk"]["state"] == "ACTIVE"
    assert state["model"]["mode"] in ("MODEL", "FALLBACK", "NONE")
    assert [v["name"] for v in state["venues"]] == [v.name for v in engine.config.venues]
    assert all(v["enabled"] for v in state["venues"])
    assert state["console"] == {"token_required": False, "metrics": False,
                                "served_ns": state["console"]["served_ns"]}


def test_kill_switch_and_resume_reach_the_engine_with_who_and_why(engine, control,
                                                                  console_server) -> None:
    server = console_server(control)
    status, _, body = call(server, "POST", "/api/risk-state",
                           {"state": "HALTED", "operator": " alice ", "reason": "runaway algo"})
    assert status == 200, body
    assert body["ok"] is True and body["state"] == "HALTED" and body["operator"] == "alice"
    assert engine_risk_state(engine) == "HALTED"
    state = state_of(server)
    assert state["risk"]["state"] == "HALTED"
    assert state["risk"]["operator"] == "alice" and state["risk"]["reason"] == "runaway algo"
    newest = state["events"][0]
    assert newest["severity"] == "critical"
    assert "HALTED" in newest["text"] and "alice" in newest["text"] and "runaway algo" in newest["text"]

    status, _, body = call(server, "POST", "/api/risk-state",
                           {"state": "reducing", "operator": "bob", "reason": "unwind only"})
    assert status == 200, body
    assert engine_risk_state(engine) == "REDUCING"
    status, _, body = call(server, "POST", "/api/risk-state",
                           {"state": "ACTIVE", "operator": "bob", "reason": "all clear"})
    assert status == 200, body
    assert engine_risk_state(engine) == "ACTIVE"
    events = state_of(server)["events"]
    assert [e["severity"] for e in events[:3]] == ["info", "warning", "critical"]
    assert "all clear" in events[0]["text"]


BAD_REQUESTS = [
    # (body or raw bytes, content type, status, field, words of the error)
    ({"state": "PAUSED", "operator": "a", "reason": "r"}, None, 400, "state", "ACTIVE, REDUCING, HALTED"),
    ({"operator": "a", "reason": "r"}, None, 400, "state", "state is required"),
    ({"state": 2, "operator": "a", "reason": "r"}, None, 400, "state", "must be one of"),
    ({"state": "HALTED", "reason": "r"}, None, 400, "operator", "operator is required"),
    ({"state": "HALTED", "operator": "   ", "reason": "r"}, None, 400, "operator", "must not be empty"),
    ({"state": "HALTED", "operator": "a", "reason": ""}, None, 400, "reason", "must not be empty"),
    ({"state": "HALTED", "operator": "a", "reason": 7}, None, 400, "reason", "must be a string"),
    ({"state": "HALTED", "operator": "a" * 129, "reason": "r"}, None, 400, "operator", "at most 128"),
    ({"state": "HALTED", "operator": "a\x00b", "reason": "r"}, None, 400, "operator", "control characters"),
    ({"state": "HALTED", "operator": "a", "reason": "r", "force": True}, None, 400, "force", "unknown field"),
    (b"{not json", None, 400, None, "not valid JSON"),
    (b"[1, 2]", None, 400, None, "must be a JSON object"),
    (b"\xff\xfe", None, 400, None, "not valid JSON"),
    ({"state": "HALTED", "operator": "a", "reason": "r"}, "text/plain", 415, None, "application/json"),
    ({"state": "HALTED", "operator": "a", "reason": "r"}, "", 415, None, "application/json"),
]


@pytest.mark.parametrize("body, content_type, status, field, words", BAD_REQUESTS)
def test_a_bad_action_is_refused_naming_what_was_wrong_and_changes_nothing(
        engine, control, console_server, body, content_type, status, field, words) -> None:
    server = console_server(control)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json" if content_type is None else content_type}
    if content_type == "":
        headers = {}
    answer, _, error = call(server, "POST", "/api/risk-state", raw=raw, headers=headers)
    assert answer == status, error
    assert error["ok"] is False and error["status"] == status and error["field"] == field
    assert words in error["error"], error["error"]
    assert engine_risk_state(engine) == "ACTIVE"
    assert state_of(server)["risk"]["state"] == "ACTIVE"  # the server is still up


def test_malformed_requests_get_json_errors(control, console_server) -> None:
    server = console_server(control)
    status, _, error = call(server, "POST", "/api/halt-everything",
                            {"operator": "a", "reason": "r"})
    assert status == 404 and "/api/risk-state" in error["error"]
    status, headers, error = call(server, "DELETE", "/api/risk-state")
    assert status == 405 and headers["allow"] == "GET, HEAD, POST"
    # no Content-Length
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.putrequest("POST", "/api/model/enable")
    connection.putheader("Content-Type", "application/json")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 411 and "Content-Length" in json.loads(response.read())["error"]
    connection.close()
    # a body over the limit is refused before it is read
    status, _, error = call(server, "POST", "/api/model/enable", raw=b" " * (64 * 1024 + 1),
                            headers={"Content-Type": "application/json"})
    assert status == 413 and "at most 65536" in error["error"]
    status, _, error = call(server, "POST", "/api/model/enable",
                            {"operator": "a", "reason": "r", "state": "HALTED"})
    assert status == 400 and error["field"] == "state"
    assert state_of(server)["risk"]["state"] == "ACTIVE"


def test_token_guards_the_actions_not_the_view(engine, control, console_server) -> None:
    server = console_server(control, token="s3cret-token")
    assert state_of(server)["console"]["token_required"] is True
    action = {"state": "HALTED", "operator": "carol", "reason": "drill"}
    status, headers, error = call(server, "POST", "/api/risk-state", action)
    assert status == 401 and error["field"] == "token" and "Bearer" in error["error"]
    assert headers["www-authenticate"].startswith("Bearer")
    status, _, error = call(server, "POST", "/api/risk-state", action,
                            headers={"Authorization": "Bearer wrong"})
    assert status == 403 and error["error"] == "wrong token"
    status, _, error = call(server, "POST", "/api/risk-state", action,
                            headers={"Authorization": "Basic s3cret-token"})
    assert status == 403
    assert engine_risk_state(engine) == "ACTIVE"
    status, _, body = call(server, "POST", "/api/risk-state", action,
                           headers={"Authorization": "Bearer s3cret-token"})
    assert status == 200, body
    assert engine_risk_state(engine) == "HALTED"


def test_host_and_origin_guards(engine, control, console_server) -> None:
    server = console_server(control)
    status, _, error = call(server, "GET", "/api/state", headers={"Host": "attacker.example"})
    assert status == 403 and "attacker.example" in error["error"]
    assert call(server, "GET", "/api/state", headers={"Host": f"localhost:{server.port}"})[0] == 200
    action = {"state": "HALTED", "operator": "mallory", "reason": "x"}
    status, _, error = call(server, "POST", "/api/risk-state", action,
                            headers={"Origin": "http://attacker.example"})
    assert status == 403 and "cross-origin" in error["error"]
    assert engine_risk_state(engine) == "ACTIVE"
    status, _, _ = call(server, "POST", "/api/risk-state", action,
                        headers={"Origin": f"http://127.0.0.1:{server.port}"})
    assert status == 200
    assert engine_risk_state(engine) == "HALTED"


class RefusingControl(EngineConsoleControl):
    """The engine's control whose actions fail the way a control plane can: a refused change
    (a SorError) and a bug (any other exception)."""

    def set_risk_state(self, state: Any, *, operator: str, reason: str) -> Any:
        raise ConfigError(f"risk.state {state} refused by the test")

    def enable_model(self, *, operator: str, reason: str) -> Any:
        raise RuntimeError("model registry unavailable")


def test_control_plane_errors_are_409_or_500_and_the_server_stays_up(engine, console_server) -> None:
    with RefusingControl(engine) as control:
        server = console_server(control)
        status, _, error = call(server, "POST", "/api/risk-state",
                                {"state": "HALTED", "operator": "a", "reason": "r"})
        assert status == 409 and "ConfigError" in error["error"] and "refused by the test" in error["error"]
        status, _, error = call(server, "POST", "/api/model/enable", {"operator": "a", "reason": "r"})
        assert status == 500 and "RuntimeError: model registry unavailable" == error["error"]
        assert state_of(server)["router"]["engine_state"] == "running"


def test_state_of_a_stopped_engine_is_a_503_and_the_server_stays_up(engine_name,
                                                                   console_server) -> None:
    from console_browser import engine_config

    from sor.engine import Engine

    engine = Engine(engine_config(engine_name)).start()
    with EngineConsoleControl(engine) as control:
        server = console_server(control)
        assert state_of(server)["router"]["engine_state"] == "running"
        engine.stop()
        status, _, error = call(server, "GET", "/api/state")
        assert status == 503 and "not started or attached" in error["error"]
        assert call(server, "GET", "/")[0] == 200


class Metrics:
    """A prometheus_client registry with one counter, exposed the way RouterMetrics is."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.orders = Counter("sor_test_orders", "child orders", registry=self.registry)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def test_metrics_are_exposed_when_given(control, console_server) -> None:
    without = console_server(control)
    status, _, error = call(without, "GET", "/metrics")
    assert status == 404 and "without metrics" in error["error"]
    metrics = Metrics()
    metrics.orders.inc(3)
    server = console_server(control, metrics=metrics)
    status, headers, body = call(server, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert b"sor_test_orders_total 3.0" in body
    assert state_of(server)["console"]["metrics"] is True


def test_concurrent_readers_and_actions(engine, control, console_server) -> None:
    server = console_server(control)
    failures: list[Any] = []

    def read() -> None:
        for _ in range(15):
            status, _, body = call(server, "GET", "/api/state")
            if status != 200:
                failures.append(body)

    def act() -> None:
        for i in range(6):
            state = ("HALTED", "ACTIVE")[i % 2]
            status, _, body = call(server, "POST", "/api/risk-state",
                                   {"state": state, "operator": "dave", "reason": f"step {i}"})
            if status != 200:
                failures.append(body)

    threads = [threading.Thread(target=read) for _ in range(4)] + [threading.Thread(target=act)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert engine_risk_state(engine) == "ACTIVE"
    texts = [e["text"] for e in state_of(server)["events"]]
    assert sum("dave" in text for text in texts) == 6


def test_lifecycle_binds_closes_and_refuses_misuse(control) -> None:
    server = ConsoleServer(control)
    assert "not serving" in repr(server)
    with server:
        assert server.serving and server.url == f"http://127.0.0.1:{server.port}/"
        port = server.port
        with pytest.raises(ConsoleError, match="already serving"):
            server.start()
        with pytest.raises(ConsoleError, match="cannot listen"):
            ConsoleServer(control, port=port).start()
    assert not server.serving
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    server.close()  # idempotent
    with pytest.raises(ConsoleError, match="has no console_state"):
        ConsoleServer(object())
    with pytest.raises(ConsoleError, match="token must not be empty"):
        ConsoleServer(control, token=" ")
    with pytest.raises(ConsoleError, match="0..65535"):
        ConsoleServer(control, port=70000)

"""The operator console's HTTP server: the page, its JSON API and the Prometheus exposition.

``ConsoleServer(control)`` serves one control object, the router's ``Gateway`` or an
:class:`~sor.monitor.console.control.EngineConsoleControl` over a bare engine. The control
object provides ``console_state()`` (the dict described in docs/guardrails.md, "Console"),
``set_risk_state(state, *, operator, reason)`` and ``enable_model(*, operator, reason)``.

The server is the standard library's ``ThreadingHTTPServer`` on a daemon thread the object
owns: ``start()`` binds and serves, ``close()`` shuts it down and joins the thread; it is a
context manager. It binds 127.0.0.1 by default. Every POST must carry a JSON object with a
non-empty ``operator`` and ``reason`` (and ``Authorization: Bearer <token>`` when a token is
set); anything else is answered 4xx with a JSON ``error`` naming what was wrong, and the
server stays up. A control object that refuses an action (a ``SorError``) is answered 409 with
its message, any other exception 500.
"""

from __future__ import annotations

import enum
import hmac
import json
import logging
import math
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from sor.errors import ConsoleError, SorError

log = logging.getLogger("sor.monitor.console")

RISK_STATES = ("ACTIVE", "REDUCING", "HALTED")
"""The risk states an operator may set (docs/guardrails.md, "Risk state")."""

MAX_BODY_BYTES = 64 * 1024
MAX_OPERATOR_CHARS = 128
MAX_REASON_CHARS = 1000

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/console.js": ("console.js", "text/javascript; charset=utf-8"),
    "/console.css": ("console.css", "text/css; charset=utf-8"),
}
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
_SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; connect-src 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)


def to_json_value(value: Any) -> Any:
    """Returns `value` as plain JSON data: enums by name, numpy scalars and arrays as Python
    numbers and lists, non-finite floats as None (JSON has no NaN), anything else as str."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dict):
        return {str(key): to_json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json_value(item) for item in value]
    if hasattr(type(value), "__members__") and hasattr(value, "name"):
        return str(value.name)  # a pybind11 enum
    if hasattr(value, "dtype") and hasattr(value, "tolist"):
        return to_json_value(value.tolist())  # numpy scalar or array
    return str(value)


class RequestRefused(Exception):
    """A request the console answers with a 4xx status: `status`, `message` and the request
    `field` that was wrong (None when it is not one field)."""

    def __init__(self, status: HTTPStatus, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def _text_field(body: dict[str, Any], name: str, limit: int) -> str:
    value = body.get(name)
    if value is None:
        raise RequestRefused(HTTPStatus.BAD_REQUEST, f"{name} is required", name)
    if not isinstance(value, str):
        raise RequestRefused(HTTPStatus.BAD_REQUEST,
                             f"{name} must be a string, got {type(value).__name__}", name)
    value = value.strip()
    if not value:
        raise RequestRefused(HTTPStatus.BAD_REQUEST, f"{name} must not be empty", name)
    if len(value) > limit:
        raise RequestRefused(HTTPStatus.BAD_REQUEST,
                             f"{name} is {len(value)} characters long, at most {limit} allowed",
                             name)
    if any(ord(c) < 32 and c not in "\t" for c in value):
        raise RequestRefused(HTTPStatus.BAD_REQUEST,
                             f"{name} must not contain control characters", name)
    return value


def _check_fields(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise RequestRefused(HTTPStatus.BAD_REQUEST,
                             f"unknown field {unknown[0]!r} (this request takes "
                             f"{', '.join(allowed)})", unknown[0])


def _risk_state_action(control: Any, body: dict[str, Any]) -> dict[str, Any]:
    _check_fields(body, ("state", "operator", "reason"))
    state = body.get("state")
    if state is None:
        raise RequestRefused(HTTPStatus.BAD_REQUEST, "state is required (one of "
                             f"{', '.join(RISK_STATES)})", "state")
    if not isinstance(state, str) or state.strip().upper() not in RISK_STATES:
        raise RequestRefused(HTTPStatus.BAD_REQUEST, f"state must be one of "
                             f"{', '.join(RISK_STATES)}, got {state!r}", "state")
    state = state.strip().upper()
    operator = _text_field(body, "operator", MAX_OPERATOR_CHARS)
    reason = _text_field(body, "reason", MAX_REASON_CHARS)
    log.warning("console: operator %r sets risk state %s: %s", operator, state, reason)
    result = control.set_risk_state(state, operator=operator, reason=reason)
    return {"action": "risk-state", "state": state, "operator": operator, "reason": reason,
            "result": to_json_value(result)}


def _enable_model_action(control: Any, body: dict[str, Any]) -> dict[str, Any]:
    _check_fields(body, ("operator", "reason"))
    operator = _text_field(body, "operator", MAX_OPERATOR_CHARS)
    reason = _text_field(body, "reason", MAX_REASON_CHARS)
    log.warning("console: operator %r re-enables the model: %s", operator, reason)
    result = control.enable_model(operator=operator, reason=reason)
    return {"action": "model-enable", "operator": operator, "reason": reason,
            "result": to_json_value(result)}


_ACTIONS = {"/api/risk-state": _risk_state_action, "/api/model/enable": _enable_model_action}


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    console: ConsoleServer


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    server_version = "sor-console"
    sys_version = ""

    # --- plumbing -----------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str,
              extra: tuple[tuple[str, str], ...] = ()) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in _SECURITY_HEADERS + extra:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("client %s went away before the answer", self.address_string())

    def _send_json(self, status: HTTPStatus, payload: dict[str, Any],
                   extra: tuple[tuple[str, str], ...] = ()) -> None:
        body = json.dumps(to_json_value(payload), separators=(",", ":")).encode()
        self._send(status, body, "application/json", extra)

    def _send_error(self, status: HTTPStatus, message: str, field: str | None = None,
                    extra: tuple[tuple[str, str], ...] = ()) -> None:
        self._send_json(status, {"ok": False, "status": int(status), "error": message,
                                 "field": field}, extra)

    def _check_host(self) -> None:
        """Refuses a Host header that is not this console's loopback name when it listens on
        loopback only (a page on another site reaching it through DNS rebinding)."""
        console = self.server.console
        if console.host not in _LOOPBACK_NAMES:
            return
        host = self.headers.get("Host", "")
        name = urlsplit(f"//{host}").hostname or ""
        if name not in _LOOPBACK_NAMES:
            raise RequestRefused(HTTPStatus.FORBIDDEN,
                                 f"Host {host!r} is not this console's address (it listens on "
                                 f"{console.host} only)")

    # --- GET ----------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 (the base's name)
        """Answers the page, its assets, /api/state and /metrics."""
        path = urlsplit(self.path).path
        try:
            self._check_host()
        except RequestRefused as refused:
            self._send_error(refused.status, refused.message)
            return
        console = self.server.console
        if path in _STATIC:
            name, content_type = _STATIC[path]
            self._send(HTTPStatus.OK, console.asset(name), content_type)
        elif path == "/api/state":
            self._get_state()
        elif path == "/metrics":
            self._get_metrics()
        else:
            self._send_error(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    do_HEAD = do_GET

    def _get_state(self) -> None:
        console = self.server.console
        try:
            state = console.control.console_state()
        except SorError as error:
            self._send_error(HTTPStatus.SERVICE_UNAVAILABLE, f"{type(error).__name__}: {error}")
            return
        except Exception as error:
            log.exception("console_state() failed")
            self._send_error(HTTPStatus.INTERNAL_SERVER_ERROR,
                             f"console_state() failed: {type(error).__name__}: {error}")
            return
        payload = dict(state)
        payload["console"] = {"token_required": console.token_required,
                              "metrics": console.metrics is not None,
                              "served_ns": time.time_ns()}
        self._send_json(HTTPStatus.OK, payload)

    def _get_metrics(self) -> None:
        metrics = self.server.console.metrics
        if metrics is None:
            self._send_error(HTTPStatus.NOT_FOUND, "this console was started without metrics")
            return
        try:
            body = metrics.exposition()
        except Exception as error:
            log.exception("metrics exposition failed")
            self._send_error(HTTPStatus.INTERNAL_SERVER_ERROR,
                             f"metrics exposition failed: {type(error).__name__}: {error}")
            return
        if isinstance(body, str):
            body = body.encode()
        try:
            from prometheus_client import CONTENT_TYPE_LATEST as content_type
        except ImportError:  # pragma: no cover (a runtime dependency)
            content_type = "text/plain; version=0.0.4; charset=utf-8"
        self._send(HTTPStatus.OK, bytes(body), content_type)

    # --- POST ---------------------------------------------------------------------------

    def do_POST(self) -> None:  # noqa: N802 (the base's name)
        """Runs an operator action (/api/risk-state, /api/model/enable)."""
        path = urlsplit(self.path).path
        try:
            action = _ACTIONS.get(path)
            self._check_host()
            if action is None:
                raise RequestRefused(HTTPStatus.NOT_FOUND, f"no such action: {path} (actions: "
                                     f"{', '.join(sorted(_ACTIONS))})")
            self._check_origin()
            self._check_token()
            body = self._read_json()
        except RequestRefused as refused:
            self._drain_body()
            extra = (("WWW-Authenticate", 'Bearer realm="sor console"'),) \
                if refused.status == HTTPStatus.UNAUTHORIZED else ()
            self._send_error(refused.status, refused.message, refused.field, extra)
            return
        console = self.server.console
        try:
            with console.action_lock:  # one operator action at a time
                result = action(console.control, body)
        except RequestRefused as refused:
            self._send_error(refused.status, refused.message, refused.field)
            return
        except SorError as error:
            log.warning("console: %s refused: %s: %s", path, type(error).__name__, error)
            self._send_error(HTTPStatus.CONFLICT, f"{type(error).__name__}: {error}")
            return
        except Exception as error:
            log.exception("console: %s failed", path)
            self._send_error(HTTPStatus.INTERNAL_SERVER_ERROR,
                             f"{type(error).__name__}: {error}")
            return
        result["ok"] = True
        self._send_json(HTTPStatus.OK, result)

    def _check_origin(self) -> None:
        origin = self.headers.get("Origin")
        if origin is None:
            return  # not a browser (curl, a script)
        if urlsplit(origin).netloc != self.headers.get("Host", ""):
            raise RequestRefused(HTTPStatus.FORBIDDEN,
                                 f"cross-origin request from {origin} refused")

    def _check_token(self) -> None:
        token = self.server.console.token
        if token is None:
            return
        header = self.headers.get("Authorization")
        if not header:
            raise RequestRefused(HTTPStatus.UNAUTHORIZED,
                                 "this console needs Authorization: Bearer <token>", "token")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                  token.encode()):
            raise RequestRefused(HTTPStatus.FORBIDDEN, "wrong token", "token")

    def _drain_body(self) -> None:
        """Reads an unread request body (bounded), so closing the connection after a refusal
        does not reset it before the client reads the answer."""
        if getattr(self, "_body_read", False):
            return
        self._body_read = True
        try:
            length = min(int(self.headers.get("Content-Length", "0")), MAX_BODY_BYTES)
        except ValueError:
            return
        if length > 0:
            self.connection.settimeout(1.0)
            try:
                self.rfile.read(length)
            except OSError:
                pass

    def _read_json(self) -> dict[str, Any]:
        content_type = self.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise RequestRefused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                                 f"Content-Type must be application/json, got "
                                 f"{content_type or 'none'}")
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise RequestRefused(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
        try:
            length = int(length_header)
        except ValueError:
            raise RequestRefused(
                HTTPStatus.BAD_REQUEST,
                f"Content-Length must be a number, got {length_header!r}") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise RequestRefused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                 f"the body is {length} bytes, at most {MAX_BODY_BYTES} allowed")
        self._body_read = True
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RequestRefused(HTTPStatus.BAD_REQUEST,
                                 f"the body is not valid JSON: {error}") from None
        if not isinstance(body, dict):
            raise RequestRefused(HTTPStatus.BAD_REQUEST,
                                 f"the body must be a JSON object, got {type(body).__name__}")
        return body

    def _method_not_allowed(self) -> None:
        self._send_error(HTTPStatus.METHOD_NOT_ALLOWED,
                         f"{self.command} is not supported (GET the page and /api/state, POST "
                         f"the actions)", extra=(("Allow", "GET, HEAD, POST"),))

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed


class ConsoleServer:
    """The operator console: a web page with live charts, tables and the kill switch, its JSON
    API and /metrics, served on a thread of this process for `control` (the router's Gateway
    or an EngineConsoleControl). A context manager; ``url`` is where to open it."""

    def __init__(self, control: Any, *, host: str = "127.0.0.1", port: int = 0,
                 metrics: Any = None, token: str | None = None) -> None:
        for name in ("console_state", "set_risk_state", "enable_model"):
            if not callable(getattr(control, name, None)):
                raise ConsoleError(f"the console's control object {type(control).__name__} "
                                   f"has no {name}() method")
        if token is not None and not token.strip():
            raise ConsoleError("the console token must not be empty (None: no token)")
        if not 0 <= int(port) <= 65535:
            raise ConsoleError(f"the console port must be 0..65535, got {port}")
        self.control = control
        self.host = host
        self.metrics = metrics
        self.token = None if token is None else token.strip()
        self.action_lock = threading.Lock()
        self._requested_port = int(port)
        self._server: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._assets: dict[str, bytes] = {}

    @property
    def token_required(self) -> bool:
        """Whether POSTs must carry the bearer token."""
        return self.token is not None

    def asset(self, name: str) -> bytes:
        """Returns the bytes of a file of the page (index.html, console.js, console.css)."""
        data = self._assets.get(name)
        if data is None:
            data = resources.files(__package__).joinpath("static", name).read_bytes()
            self._assets[name] = data
        return data

    def start(self) -> ConsoleServer:
        """Binds the address and serves on a daemon thread; returns self."""
        if self._server is not None:
            raise ConsoleError(f"the console is already serving on {self.url}")
        for name in ("index.html", "console.js", "console.css"):
            self.asset(name)  # a broken install fails here, not at the first request
        server_class = _HttpServer
        if ":" in self.host:
            server_class = type("_HttpServer6", (_HttpServer,), {"address_family": socket.AF_INET6})
        try:
            server = server_class((self.host, self._requested_port), _Handler)
        except OSError as error:
            raise ConsoleError(f"the console cannot listen on {self.host}:{self._requested_port}: "
                               f"{error.strerror or error}") from error
        server.console = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"sor-console-{self.port}", daemon=True)
        self._thread.start()
        log.info("console serving on %s", self.url)
        return self

    @property
    def port(self) -> int:
        """The port the console listens on (the bound one when started with port 0)."""
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The console's address, e.g. ``http://127.0.0.1:8080/``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def serving(self) -> bool:
        """Whether the server thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Stops serving, closes the socket and joins the server thread (idempotent)."""
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> ConsoleServer:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "not serving"
        return f"<sor.monitor.console.ConsoleServer {where}>"

"""Fixtures of the console tests: a real engine per test (unique name, segments checked for
leaks), its EngineConsoleControl, a console server for any control object, and headless
Chromium (installed from Debian's packages when missing; see console_browser.py) with a
``ConsolePage`` on a console.

``open_console(control, token=None, metrics=None)`` starts a ConsoleServer for any control
object (an EngineConsoleControl, the router's Gateway) and returns the page loaded in the
browser; everything is closed after the test.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from console_browser import (
    BrowserPaths,
    BrowserUnavailable,
    ConsolePage,
    engine_config,
    ensure_browser,
    start_driver,
)

from sor.engine import Engine
from sor.monitor.console import ConsoleServer, EngineConsoleControl

_INSTALL: dict[str, Any] = {}


def shm_entries(prefix: str) -> list[str]:
    """Returns the /dev/shm entries whose name starts with `prefix`."""
    return sorted(name for name in os.listdir("/dev/shm") if name.startswith(prefix))


@pytest.fixture
def engine_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A unique engine name for this test; its segments must be gone afterwards."""
    tail = "".join(c for c in request.node.name[-14:] if c.isalnum())
    prefix = f"sorcon{os.getpid()}{tail}"
    yield prefix
    assert shm_entries(prefix) == [], "segments leaked"


@pytest.fixture
def engine(engine_name: str) -> Iterator[Engine]:
    """A running engine (a thread of this process)."""
    running = Engine(engine_config(engine_name)).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def control(engine: Engine) -> Iterator[EngineConsoleControl]:
    """The console's control object over `engine`."""
    with EngineConsoleControl(engine) as handle:
        yield handle


@pytest.fixture
def console_server() -> Iterator[Callable[..., ConsoleServer]]:
    """A factory of started ConsoleServers (closed after the test)."""
    servers: list[ConsoleServer] = []

    def start(control: Any, **options: Any) -> ConsoleServer:
        server = ConsoleServer(control, **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def browser_paths() -> BrowserPaths:
    """Debian's chromium and chromedriver, installed when missing (the test fails, naming the
    command, when they cannot be)."""
    try:
        paths = ensure_browser()
    except BrowserUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    _INSTALL["paths"] = paths
    return paths


@pytest.fixture(scope="session")
def driver(browser_paths: BrowserPaths) -> Iterator[Any]:
    """One headless Chromium for the session."""
    started = time.monotonic()
    browser = start_driver(browser_paths)
    _INSTALL["driver_start_s"] = time.monotonic() - started
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def open_console(driver: Any, console_server: Callable[..., ConsoleServer]
                 ) -> Iterator[Callable[..., ConsolePage]]:
    """``open_console(control, **server_options)``: serves a console for `control` and
    returns the page loaded in the browser."""
    def open_page(control: Any, **options: Any) -> ConsolePage:
        server = console_server(control, **options)
        return ConsolePage(driver, server.url, server=server).open()

    yield open_page
    driver.get("about:blank")  # stop the page's polling before its server closes
    driver.get_log("browser")  # drop this test's console messages


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Reports where the browser came from and how long installing it took."""
    paths = _INSTALL.get("paths")
    if paths is None:
        return
    took = "already installed" if paths.install_seconds is None else \
        f"installed by the tests in {paths.install_seconds:.1f} s"
    start = _INSTALL.get("driver_start_s")
    started = f"; driver started in {start:.1f} s" if start is not None else ""
    terminalreporter.write_line(f"console browser: {paths.chromium} with {paths.chromedriver} "
                                f"({took}{started})")

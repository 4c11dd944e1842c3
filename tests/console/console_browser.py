"""Headless Chromium for the console tests: finds Debian's ``chromium`` and ``chromedriver``,
installs them with apt-get when they are missing and this process may (root, apt-get on the
PATH), and starts a selenium driver on them with an explicit chromedriver path (selenium
never downloads a driver: the test machines have no network but the package mirrors).

Run as a script (``python tests/console/console_browser.py``) it installs the browser if needed and
prints the paths and how long the install took.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from sor.config import default_config, with_changes

INSTALL_COMMAND = ["apt-get", "install", "-y", "--no-install-recommends", "-o",
                   "DPkg::Lock::Timeout=600", "chromium", "chromium-driver"]
UPDATE_COMMAND = ["apt-get", "update", "-o", "DPkg::Lock::Timeout=600"]
LOCK_PATH = os.path.join(tempfile.gettempdir(), "sor-console-chromium-install.lock")

_CHROMIUM_NAMES = ("chromium", "chromium-browser")
_DRIVER_NAMES = ("chromedriver",)
_EXTRA_DIRS = ("/usr/bin", "/usr/lib/chromium")


class BrowserUnavailable(RuntimeError):
    """Chromium or chromedriver is missing and could not be installed; the message says what
    to run."""


@dataclass(frozen=True)
class BrowserPaths:
    """The chromium binary, the chromedriver binary and how long installing them took
    (None when they were already there)."""

    chromium: str
    chromedriver: str
    install_seconds: float | None


def _find(names: tuple[str, ...]) -> str | None:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
        for folder in _EXTRA_DIRS:
            candidate = os.path.join(folder, name)
            if os.access(candidate, os.X_OK):
                return candidate
    return None


def find_browser() -> tuple[str | None, str | None]:
    """Returns the paths of chromium and chromedriver (None for a missing one); the
    environment variables SOR_CHROMIUM and SOR_CHROMEDRIVER override the search (an override
    that is not executable raises BrowserUnavailable)."""
    found = []
    for variable, names in (("SOR_CHROMIUM", _CHROMIUM_NAMES), ("SOR_CHROMEDRIVER", _DRIVER_NAMES)):
        given = os.environ.get(variable)
        if given and not os.access(given, os.X_OK):
            raise BrowserUnavailable(f"{variable}={given} is not an executable file")
        found.append(given or _find(names))
    return found[0], found[1]


def _run(command: list[str], log: list[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    log.append(f"$ {' '.join(command)}  (exit {result.returncode})\n{result.stdout[-4000:]}"
               f"{result.stderr[-4000:]}")
    return result


def _has_candidate() -> bool:
    result = subprocess.run(["apt-cache", "policy", "chromium", "chromium-driver"],
                            capture_output=True, text=True, check=False)
    return result.returncode == 0 and result.stdout.count("Candidate:") == 2 and \
        "Candidate: (none)" not in result.stdout


def ensure_browser() -> BrowserPaths:
    """Returns the paths of chromium and chromedriver, installing Debian's packages first when
    they are missing (root with apt-get only; one install at a time under a file lock).
    Raises BrowserUnavailable naming the command to run when they cannot be had."""
    chromium, driver = find_browser()
    if chromium and driver:
        return BrowserPaths(chromium, driver, None)
    command = " ".join(INSTALL_COMMAND[:4] + INSTALL_COMMAND[6:])
    if shutil.which("apt-get") is None:
        raise BrowserUnavailable(
            f"the console browser tests need Debian's chromium and chromium-driver "
            f"(missing: {'chromium' if not chromium else 'chromedriver'}) and this machine has "
            f"no apt-get; install them, or set SOR_CHROMIUM and SOR_CHROMEDRIVER")
    if os.geteuid() != 0:
        raise BrowserUnavailable(
            f"the console browser tests need Debian's chromium and chromium-driver; run "
            f"`sudo {command}` (the tests install them only when run as root)")
    started = time.monotonic()
    log: list[str] = []
    with open(LOCK_PATH, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel run installs; this one waits for it
        chromium, driver = find_browser()
        if chromium and driver:
            return BrowserPaths(chromium, driver, time.monotonic() - started)
        if not _has_candidate():
            _run(UPDATE_COMMAND, log)
        result = _run(INSTALL_COMMAND, log)
        if result.returncode != 0:
            # stale package lists (a mirror moved on): refresh them once and try again
            _run(UPDATE_COMMAND, log)
            result = _run(INSTALL_COMMAND, log)
        chromium, driver = find_browser()
        if result.returncode != 0 or not (chromium and driver):
            raise BrowserUnavailable(
                f"installing the console test browser failed: `{command}` exited "
                f"{result.returncode}; its output:\n" + "\n".join(log))
    return BrowserPaths(chromium, driver, time.monotonic() - started)


def start_driver(paths: BrowserPaths, *, width: int = 1600, height: int = 1000):
    """Returns a selenium Chrome driver on headless `paths.chromium` through
    `paths.chromedriver` (selenium-manager is not used)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths.chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                     "--disable-extensions", "--disable-background-networking",
                     f"--window-size={width},{height}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=paths.chromedriver)
    return webdriver.Chrome(service=service, options=options)



class ConsolePage:
    """The console page in a selenium driver, with the waits and actions the tests need:
    ``open()``, ``text(id)``, ``wait_text(id, expected)``, ``press(button_id, operator,
    reason)``, ``events()``, ``form_error()``, ``console_model()`` (window.sorConsole)."""

    def __init__(self, driver, url: str, *, server=None, timeout_s: float = 10.0) -> None:
        self.driver = driver
        self.url = url
        self.server = server  # the ConsoleServer serving the page, when the caller has it
        self.timeout_s = timeout_s

    def open(self) -> ConsolePage:
        """Loads the page and waits for its first good poll of /api/state."""
        self.driver.get(self.url)
        self.wait(lambda: self.console_model()["polls"] >= 1, "the page never read /api/state")
        return self

    def wait(self, predicate, what: str, timeout_s: float | None = None):
        """Returns the first truthy value of `predicate()`; fails with `what` and the page's
        last error when none comes within the timeout."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                model = self.console_model()
                raise AssertionError(f"{what} (page polls {model.get('polls')}, last error "
                                     f"{model.get('lastError')!r})")
            time.sleep(0.05)

    def element(self, element_id: str):
        """Returns the element with id `element_id`."""
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, element_id)

    def text(self, element_id: str) -> str:
        """Returns the visible text of element `element_id`."""
        return self.element(element_id).text

    def wait_text(self, element_id: str, expected: str, timeout_s: float | None = None) -> str:
        """Waits until element `element_id` shows `expected` (a substring); returns its text."""
        self.wait(lambda: expected in self.text(element_id),
                  f"#{element_id} never showed {expected!r} (shows {self.text(element_id)!r})",
                  timeout_s)
        return self.text(element_id)

    def console_model(self) -> dict:
        """Returns the page's state (window.sorConsole without its history)."""
        return self.driver.execute_script(
            "const m = window.sorConsole || {}; return {polls: m.polls || 0, failures: "
            "m.failures || 0, lastError: m.lastError || null, points: (m.history || []).length, "
            "last: m.last || null, actions: m.actions || []};")

    def history(self) -> list[dict]:
        """Returns the page's chart history (one point per poll)."""
        return self.driver.execute_script("return window.sorConsole.history;")

    def press(self, button_id: str, operator: str, reason: str, *, token: str | None = None,
              confirm: bool = True) -> None:
        """Presses control `button_id`, fills the operator, reason (and token) fields of the
        dialog and presses Confirm (unless `confirm` is false)."""
        self.element(button_id).click()
        self.wait(lambda: self.element("action-dialog").is_displayed(), "the dialog never opened")
        self.fill(operator=operator, reason=reason, token=token, confirm=confirm)

    def fill(self, *, operator: str | None = None, reason: str | None = None,
             token: str | None = None, confirm: bool = True) -> None:
        """Replaces the given fields of the open dialog and presses Confirm (unless
        `confirm` is false)."""
        for field, value in (("operator", operator), ("reason", reason), ("token", token)):
            if value is None:
                continue
            element = self.element(field)
            element.clear()
            element.send_keys(value)
        if confirm:
            self.element("confirm").click()

    def dialog_open(self) -> bool:
        """Whether the confirmation dialog is shown."""
        return self.element("action-dialog").is_displayed()

    def form_error(self) -> str:
        """Returns the error the dialog shows ('' when none)."""
        element = self.element("form-error")
        return element.text if element.is_displayed() else ""

    def events(self) -> list[tuple[str, str]]:
        """Returns the event log as (severity, text) pairs, newest first."""
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll('#events li:not(.empty)')).map(li => "
            "[li.className.replace('severity-', ''), li.querySelector('.text').textContent]);")

    def browser_errors(self) -> list[str]:
        """Returns the SEVERE entries of the browser's console log (JS errors, failed loads)."""
        return [entry["message"] for entry in self.driver.get_log("browser")
                if entry.get("level") == "SEVERE"]

    def screenshot(self, path: str) -> str:
        """Saves a PNG of the page at `path`; returns the path."""
        self.driver.save_screenshot(path)
        return path


if __name__ == "__main__":
    try:
        found = ensure_browser()
    except BrowserUnavailable as error:
        print(error, file=sys.stderr)
        sys.exit(1)
    took = "already installed" if found.install_seconds is None else \
        f"installed in {found.install_seconds:.1f} s"
    print(f"chromium {found.chromium}, chromedriver {found.chromedriver}: {took}")


def engine_config(name: str):
    """Returns the embedded configuration with engine `name` and room for the tests' orders."""
    return with_changes(default_config(), {
        "engine.name": name, "risk.max_open_orders": 10_000,
        "risk.max_orders_per_second": 100_000})

"""``sor console --engine NAME``: a console process attached by name to an engine running in
another process (here: this test's), whose kill switch halts that engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any


from sor.config import dump


def console_process(engine, tmp_path, *extra: str, env: dict[str, str] | None = None
                    ) -> subprocess.Popen:
    config = tmp_path / "router.toml"
    config.write_text(dump(engine.config))
    environment = {key: value for key, value in os.environ.items() if key != "SOR_CONSOLE_TOKEN"}
    environment.update(PYTHONPATH=os.pathsep.join(sys.path), **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "sor.cli", "console", "--engine", engine.name,
                             "--config", str(config), "--port", "0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment)


def post(url: str, body: dict[str, Any], token: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_console_process_halts_an_engine_attached_by_name(engine, tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("t0ken\n")
    process = console_process(engine, tmp_path, "--token-file", str(token_file))
    try:
        line = process.stdout.readline()
        assert f"sor console: engine {engine.name} (process {os.getpid()})" in line, \
            process.stderr.read()
        assert "token required" in line
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        with urllib.request.urlopen(url + "api/state", timeout=10) as response:
            state = json.loads(response.read())
        assert state["router"]["name"] == engine.name and state["risk"]["state"] == "ACTIVE"
        status, error = post(url + "api/risk-state",
                             {"state": "HALTED", "operator": "erin", "reason": "drill"})
        assert status == 401, error
        status, body = post(url + "api/risk-state",
                            {"state": "HALTED", "operator": "erin", "reason": "drill"}, "t0ken")
        assert status == 200, body
        assert str(engine.counters()["risk_state"]).upper() == "HALTED"
        with urllib.request.urlopen(url + "api/state", timeout=10) as response:
            state = json.loads(response.read())
        assert state["risk"]["operator"] == "erin"
        assert "erin" in state["events"][0]["text"]
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
        assert process.returncode == 0 and "stopped" in out, err
        assert engine.state == "running"  # the console left the engine running
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_console_for_a_missing_engine_fails_naming_it(engine_name, tmp_path) -> None:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-m", "sor.cli", "console", "--engine",
                             engine_name, "--port", "0"], capture_output=True, text=True,
                            env=environment, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("sor: error:") and engine_name in result.stderr
    empty = tmp_path / "empty"
    empty.write_text("\n")
    result = subprocess.run([sys.executable, "-m", "sor.cli", "console", "--engine",
                             engine_name, "--token-file", str(empty)], capture_output=True,
                            text=True, env=environment, timeout=60)
    assert result.returncode == 2 and "token file" in result.stderr and "empty" in result.stderr

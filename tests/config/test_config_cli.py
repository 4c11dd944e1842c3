"""`sor config check|show|diff` through sor.cli.main."""

from __future__ import annotations

from pathlib import Path

import pytest

from sor.cli import main
from sor.config import default_config, dump, load, loads, with_changes

COLO_EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "config" / "colo-example.toml"


@pytest.fixture
def files(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(dump(default_config()), encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(dump(default_config()).replace("max_open_orders = 500", "max_open_orders = 0"),
                   encoding="utf-8")
    changed = tmp_path / "changed.toml"
    changed.write_text(dump(with_changes(default_config(), {"risk.max_open_orders": 800,
                                                            "venues[DARK].enabled": False})),
                       encoding="utf-8")
    return good, bad, changed


def test_check_prints_ok_for_good_files(files, capsys):
    good, _, _ = files
    assert main(["config", "check", str(good), str(COLO_EXAMPLE)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{good}: ok", f"{COLO_EXAMPLE}: ok"]


def test_check_names_file_key_and_reason_and_exits_2(files, capsys):
    good, bad, _ = files
    assert main(["config", "check", str(bad), str(good)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"sor: error: {bad}: risk.max_open_orders: must be >= 1, got 0\n"
    assert captured.out == f"{good}: ok\n"   # the other files are still checked
    assert main(["config", "check", str(bad.parent / "missing.toml")]) == 2
    assert "missing.toml: cannot read the file" in capsys.readouterr().err


def test_show_prints_normalized_toml_of_a_file_or_the_defaults(files, capsys):
    assert main(["config", "show"]) == 0
    shown = capsys.readouterr().out
    assert shown == dump(default_config()) and loads(shown) == default_config()
    assert main(["config", "show", str(COLO_EXAMPLE)]) == 0
    assert loads(capsys.readouterr().out) == load(COLO_EXAMPLE)
    _, bad, _ = files
    assert main(["config", "show", str(bad)]) == 2
    assert "risk.max_open_orders" in capsys.readouterr().err


def test_diff_prints_each_change(files, capsys):
    good, _, changed = files
    assert main(["config", "diff", str(good), str(changed)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "venues[DARK].enabled: true -> false", "risk.max_open_orders: 500 -> 800"]
    assert main(["config", "diff", str(good), str(good)]) == 0
    assert capsys.readouterr().out == "no differences\n"


def test_config_needs_an_action(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["config"])
    assert exited.value.code == 2 and "ACTION" in capsys.readouterr().err

"""`sor data simulate-day` and `sor retrain` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sor.cli import main


def test_simulate_day_command_writes_journal_and_itch(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "simulate-day", str(tmp_path / "day"), "--hours", "0.18",
                 "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "trading day 2023-11-15" in out
    names = sorted(p.name for p in (tmp_path / "day").iterdir())
    assert names == ["BATS-2023-11-15.itch", "EDGX-2023-11-15.itch", "IEXG-2023-11-15.itch",
                     "XNAS-2023-11-15.itch", "audit-default-5.sorj"]


def test_retrain_command_on_an_empty_store_names_what_is_missing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["retrain", "--store", str(tmp_path / "store"), "--no-rl"]) == 2
    assert "no children, decisions, quotes dataset" in capsys.readouterr().err


def test_retrain_command_refuses_reserved_seeds(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["retrain", "--store", str(tmp_path / "store"), "--no-rl",
                 "--seeds", "101-102"]) == 2
    assert "used for training or validation" in capsys.readouterr().err

"""`sor audit`: the summary, SQL, retraining rows and a clear error on a damaged journal."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from monitor_records import CHILD_ORDER, EXECUTION, FILL, audit, decisions
from sor.cli import main
from sor.monitor.journal import AuditJournal


def journal(folder: Path) -> Path:
    d = decisions(3, venue_ids=np.array([0, 1, 1]), quantity=100)
    a = audit([(CHILD_ORDER, 1, 1_000_100, 100, 0, 0), (CHILD_ORDER, 2, 1_000_100, 100, 0, 1),
               (EXECUTION, 1, 1_000_100, 100, FILL, 0)])
    with AuditJournal.new_run(folder) as j:
        j.append_decisions(d)
        j.append_audit(a)
        j.append_event("operator", operator="carol", action="halt", reason="drill")
        return Path(j.path)


def test_summary_sql_and_training_rows(tmp_path: Path, capsys) -> None:
    path = journal(tmp_path / "audit")
    assert main(["audit", str(tmp_path / "audit")]) == 0
    out = capsys.readouterr().out
    assert "decisions 3 (children sent 3, risk rejected 0, model-routed 3)" in out
    assert "child_order 2" in out and "execution 1" in out and "operator 1" in out
    assert main(["audit", str(path), "--sql",
                 "select venue_id, count(*) as n from decisions group by 1 order by 1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["venue_id", "n"] and lines[2].split() == ["0", "1"] and \
        lines[3].split() == ["1", "2"]
    assert main(["audit", str(path), "--json", "--sql",
                 "select json_extract_string(data, '$.operator') as who from events"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"who": "carol"}]
    out_file = tmp_path / "rows.parquet"
    assert main(["audit", str(path), "--training-rows", str(out_file)]) == 0
    table = pq.read_table(out_file)
    assert table.column("child_order_id").to_pylist() == [1]   # the one finished child
    assert table.column("filled").to_pylist() == [True]


def test_damage_is_reported_and_can_be_skipped(tmp_path: Path, capsys) -> None:
    path = journal(tmp_path)
    data = bytearray(path.read_bytes())
    (header,) = struct.unpack_from("<I", data, 12)
    data[20 + header + 20] ^= 0xFF  # inside the first frame (decisions)
    path.write_bytes(bytes(data))
    assert main(["audit", str(path)]) == 2
    assert f"is damaged at offset {20 + header}" in capsys.readouterr().err
    assert main(["audit", str(path), "--on-corrupt", "skip"]) == 0
    out = capsys.readouterr().out
    assert "decisions 0" in out and f"damaged bytes skipped: {path} offset {20 + header}" in out
    assert main(["audit", str(path), "--on-corrupt", "skip", "--sql", "select nope"]) == 2
    assert "query failed" in capsys.readouterr().err

"""The forms a risk refusal takes at the OMS, without a session: the Text of every
RejectReason in its unit, OrdRejReason per FIX version, the restated report, the duplicate key
the engine gets, and the cancel_on_disconnect session key."""

from __future__ import annotations

import hashlib

import pytest

from sor import _core
from sor.errors import ConfigError
from sor.fix.config import loads_sessions
from sor.fix.gateway import messages as m
from sor.fix.gateway.core import PARENT_STOPPING_REASONS, client_order_hash
from sor.fix.gateway.runner import default_sessions

REASONS = [name for name in _core.RejectReason.__members__ if name != "NONE"]


@pytest.mark.parametrize("reason, measured, limit, text", [
    ("MAX_ORDER_QUANTITY", 12_000, 10_000, "MAX_ORDER_QUANTITY: 12000 > limit 10000 (shares)"),
    ("MAX_PARENT_QUANTITY", 5_000_000, 1_000_000,
     "MAX_PARENT_QUANTITY: 5000000 > limit 1000000 (shares)"),
    ("POSITION_LIMIT", 700, 500, "POSITION_LIMIT: 700 > limit 500 (shares)"),
    ("PARTICIPATION", 400, 120, "PARTICIPATION: 400 > limit 120 (shares)"),
    ("MAX_ORDER_NOTIONAL", 1_000_050, 500_000, "MAX_ORDER_NOTIONAL: 10000.50 > limit 5000.00 (USD)"),
    ("CREDIT_LIMIT", 2_500_000, 2_000_000, "CREDIT_LIMIT: 25000.00 > limit 20000.00 (USD)"),
    ("MAX_PARENT_NOTIONAL", 12_345, 10_000, "MAX_PARENT_NOTIONAL: 123.45 > limit 100.00 (USD)"),
    ("GROSS_NOTIONAL", 200, 100, "GROSS_NOTIONAL: 2.00 > limit 1.00 (USD)"),
    ("PRICE_BAND", 19_802, 5_000, "PRICE_BAND: 198.02 > limit 50.00 (bps)"),
    ("REFERENCE_COLLAR", 30_000, 10_000, "REFERENCE_COLLAR: 300.00 > limit 100.00 (bps)"),
    ("ORDER_RATE", 3, 2, "ORDER_RATE: 3 > limit 2 (orders/s)"),
    ("MESSAGE_RATE", 9, 8, "MESSAGE_RATE: 9 > limit 8 (messages/s)"),
    ("MAX_OPEN_ORDERS", 4, 3, "MAX_OPEN_ORDERS: 4 > limit 3 (orders)"),
])
def test_a_refusal_text_shows_the_measured_value_and_the_limit_in_the_reason_unit(
        reason, measured, limit, text):
    assert m.risk_text(reason, measured, limit) == text


def test_reasons_without_numbers_say_what_they_mean_or_who_caused_them():
    assert m.risk_text("RESTRICTED") == "RESTRICTED: the instrument is on the restricted list"
    assert m.risk_text("HALTED", detail="routing HALTED by alice: fat finger") == \
        "HALTED: routing HALTED by alice: fat finger"
    assert m.risk_text("REDUCING", 200, 150, detail="routing REDUCING by bob: close") == \
        "REDUCING: 200 > limit 150 (shares); routing REDUCING by bob: close"
    for reason in REASONS:  # every engine reason reads "<REASON>: ..." even with 0/0
        text = m.risk_text(reason)
        assert text.startswith(f"{reason}: ") and len(text) > len(reason) + 4


def test_every_reject_reason_has_an_ord_rej_reason_valid_in_each_version():
    fix42 = set(range(0, 9))
    fix44 = set(range(0, 16)) | {99}
    for reason in REASONS:
        code = m.engine_reject_code(reason)
        assert m.ord_rej_reason_for("FIX.4.4", code) in fix44, reason
        assert m.ord_rej_reason_for("FIX.4.2", code) in fix42, reason
    assert m.engine_reject_code("UNKNOWN_ACCOUNT") == 15
    assert m.ord_rej_reason_for("FIX.4.2", 15) == 0
    assert m.engine_reject_code("RESTRICTED") == 0
    assert m.engine_reject_code("CREDIT_LIMIT") == m.engine_reject_code("PRICE_BAND") == 3
    assert m.engine_reject_code("DUPLICATE_CLIENT_ORDER_ID") == 6


def test_the_parent_stopping_reasons_are_the_contracts():
    names = {_core.RejectReason(r).name for r in PARENT_STOPPING_REASONS}
    assert names == {"RESTRICTED", "CREDIT_LIMIT", "POSITION_LIMIT", "UNKNOWN_ACCOUNT"}


@pytest.mark.parametrize("begin", ["FIX.4.2", "FIX.4.4"])
def test_a_restated_report_keeps_the_status_and_carries_the_reason(begin):
    body = m.execution_report(
        begin, order_id="7", cl_ord_id="c1", exec_id="1-9", exec_type="D", ord_status="1",
        symbol="AAPL", side_code="1", quantity=500, ord_type=2, price="100", leaves=400,
        cum=100, avg_price="100", transact_time="20240102-10:00:00.000",
        text="PRICE_BAND: 198.02 > limit 50.00 (bps)", risk_reason="PRICE_BAND",
        restatement_reason=m.RESTATED_BROKER_OPTION, account="ACCT1")
    fields = dict(body)
    assert fields[150] == "D" and fields[39] == "1" and fields[378] == 4
    assert fields[7929] == "PRICE_BAND" and fields[1] == "ACCT1"
    assert fields[58].startswith("PRICE_BAND: ")
    assert (20 in fields) == (begin == "FIX.4.2")


def test_the_duplicate_key_is_blake2b_of_session_and_cl_ord_id():
    digest = hashlib.blake2b(b"OMS\x01order-1").digest()
    assert client_order_hash("OMS", "order-1") == int.from_bytes(digest[:8], "little")
    assert client_order_hash("OMS", "order-1") != client_order_hash("OMS42", "order-1")
    assert 0 < client_order_hash("OMS", "x") < 2**64


def test_cancel_on_disconnect_is_a_session_key_on_by_default_for_the_embedded_oms():
    text = """
[[sessions]]
name = "OMS"
cancel_on_disconnect = true
[[sessions]]
name = "OTHER"
target_comp_id = "OTHER"
"""
    first, second = loads_sessions(text)
    assert first.cancel_on_disconnect is True and second.cancel_on_disconnect is False
    with pytest.raises(ConfigError, match=r"sessions\[0\]\.cancel_on_disconnect"):
        loads_sessions('[[sessions]]\nname = "OMS"\ncancel_on_disconnect = "yes"\n')
    embedded = {s.name: s.cancel_on_disconnect for s in default_sessions()}
    assert embedded["OMS"] and embedded["OMS42"]
    assert not any(v for name, v in embedded.items() if name not in ("OMS", "OMS42"))

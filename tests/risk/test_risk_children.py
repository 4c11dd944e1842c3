"""Child checks in a running engine, driven through its rings: each control refuses the child
with its reason, the measured value and the limit (RISK_REJECT); the parent-stopping reasons
stop the parent (PARENT_DONE 3 with the reason); the rest leave it working."""

from __future__ import annotations

import numpy as np

from risk_harness import ASK, BID, Run, add, book_events, config, trade

from sor import _core
from sor.engine import Engine


def test_venue_order_notional_gross_and_band_limits(name: str) -> None:
    cfg = config({"venues[XNAS].enabled": False}, max_order_notional_usd=25_000.0,
                 max_gross_notional_usd=45_000.0)
    with Engine(cfg, name=name) as engine:
        run = Run(engine)
        run.publish(book_events())
        engine.submit_parent(1, "AAPL", "buy", 200)   # 200 x 100.01 at BATS fits
        engine.submit_parent(2, "AAPL", "buy", 300)
        run.settle()
        assert run.new_children(1)["quantity"].tolist() == [200]
        # parent 2: XNAS disabled; 300 x 100.01 = 30,003 USD > 25,000; EDGX 300 x 100.02
        # the same; the gross notional would have been 20,002 + 30,006
        assert run.risk_rejects(2) == [("VENUE_DISABLED", 0, 0, 0),
                                       ("MAX_ORDER_NOTIONAL", 3_000_300, 2_500_000, 1),
                                       ("MAX_ORDER_NOTIONAL", 3_000_600, 2_500_000, 2)]
        assert run.done(2) is None  # soft refusals: the parent keeps working
        engine.update_config(lambda c: c.replace(risk=c.risk.replace(
            max_order_notional_usd=40_000.0)))
        # 300 more at BATS' top: 20,002 sent + 30,003 would make 50,005 > 45,000
        run.publish(add(1, 2, ASK, 300, 900))
        assert run.risk_rejects(2)[-1] == ("GROSS_NOTIONAL", 5_000_500, 4_500_000, 1)
        assert len(run.new_children(2)) == 0


def test_price_band_and_the_reference_collar_from_the_last_trade(name: str) -> None:
    cfg = config(price_band_bps=100.0, reference_collar_bps=50.0)
    with Engine(cfg, name=name) as engine:
        run = Run(engine)
        run.publish(book_events())
        run.publish(trade(990_000, 500))  # the last trade, 99.00, is the reference
        engine.submit_parent(1, "AAPL", "buy", 100)
        run.settle()
        # 100.01 is 102.02 bps above 99.00 (collar 50 bps): every venue refused
        assert run.risk_rejects(1)[0] == ("REFERENCE_COLLAR", 10_202, 5_000, 0)
        assert len(run.new_children(1)) == 0
        run.publish(trade(999_000, 100))  # 99.90: 100.01 is 11.01 bps above it
        run.publish(add(0, 2, ASK, 100, 900))
        assert run.new_children(1)["quantity"].tolist() == [100]
        # the configured reference wins over the last trade
        engine.update_config(lambda c: c.replace(
            instruments=tuple(i.replace(reference_price_ticks=990_000) if i.symbol == "AAPL"
                              else i for i in c.instruments)))
        engine.submit_parent(2, "AAPL", "buy", 100)
        run.settle()
        assert run.risk_rejects(2)[0] == ("REFERENCE_COLLAR", 10_202, 5_000, 0)
        # the band around the NBBO mid: 100.01 is 0.49997 bps above the 100.005 mid
        engine.update_config(lambda c: c.replace(risk=c.risk.replace(
            reference_collar_bps=0.0, price_band_bps=0.4)))
        engine.submit_parent(3, "AAPL", "buy", 100)
        run.settle()
        assert run.risk_rejects(3)[0] == ("PRICE_BAND", 50, 40, 0)


def test_open_orders_order_rate_and_message_rate(name: str) -> None:
    cfg = config(max_open_orders=2, max_orders_per_second=100, max_messages_per_second=100)
    with Engine(cfg, name=name) as engine:
        run = Run(engine)
        run.publish(book_events())
        engine.submit_parent(1, "AAPL", "buy", 900)
        run.settle()
        assert len(run.new_children(1)) == 2
        assert run.risk_rejects(1) == [("MAX_OPEN_ORDERS", 3, 2, 2)]
        run.report(run.new_children(1), 3)  # both cancelled: nothing open
    cfg = config(max_orders_per_second=2, max_messages_per_second=100)
    with Engine(cfg, name=name) as engine:
        run = Run(engine)
        run.publish(book_events())
        engine.submit_parent(1, "AAPL", "buy", 900)
        run.settle()
        assert len(run.new_children(1)) == 2
        reason, measured, limit, venue = run.risk_rejects(1)[0]
        assert (reason, limit, venue) == ("ORDER_RATE", 2, 2) and measured >= 3
    cfg = config(max_orders_per_second=100, max_messages_per_second=2)
    with Engine(cfg, name=name) as engine:
        run = Run(engine)
        run.publish(book_events())
        engine.submit_parent(1, "AAPL", "buy", 900)
        run.settle()
        children = run.new_children(1)
        assert len(children) == 2
        reason, measured, limit, _ = run.risk_rejects(1)[0]
        assert (reason, limit) == ("MESSAGE_RATE", 2) and measured >= 3
        # cancels are never refused, even with the message bucket empty; they count
        engine.cancel_parent(1)
        run.settle()
        assert sorted(run.cancels()["child_order_id"]) == sorted(children["child_order_id"])
        assert engine.counters()["messages"] == 4
        by_reason = engine.counters()["risk_rejects_by_reason"]
        assert by_reason[int(_core.RejectReason.MESSAGE_RATE)] == 1


def test_participation_counts_printed_volume_since_the_parent_started(name: str) -> None:
    cfg = config(max_participation_rate=0.1, participation_allowance_shares=50)
    with Engine(cfg, name=name) as engine:
        run = Run(engine)
        run.publish(book_events())
        run.publish(trade(ASK, 10_000))  # before the parent: does not count
        engine.submit_parent(1, "AAPL", "buy", 300)
        run.settle()
        assert run.risk_rejects(1)[0] == ("PARTICIPATION", 300, 50, 0)
        run.publish(trade(ASK, 1_000))  # 0.1 x 1,000 + 50 = 150
        run.publish(add(0, 2, ASK, 100, 900))
        assert run.new_children(1)["quantity"].tolist() == [100]
        run.publish(add(1, 2, ASK, 100, 901))  # 100 working + 100 > 150
        assert run.risk_rejects(1)[-1] == ("PARTICIPATION", 200, 150, 1)
        run.publish(trade(ASK, 2_000))  # 0.1 x 3,000 + 50 = 350
        run.publish(add(1, 2, ASK, 100, 902))
        assert run.new_children(1)["quantity"].tolist() == [100, 100]
        assert run.done(1) is None


LIMIT = 1_000_050  # 100.005: a buy limit below the offers, so the parent rests


def test_credit_and_position_accumulate_from_fills_and_stop_the_parent(name: str) -> None:
    cfg = config(default_credit_limit_usd=60_000.0, trading_day=20260105)
    with Engine(cfg, name=name) as engine:
        run = Run(engine)
        run.publish(book_events())
        engine.submit_parent(1, "AAPL", "buy", 300, limit_price_ticks=LIMIT)  # rests
        engine.submit_parent(2, "AAPL", "buy", 400)
        run.settle()
        taken = run.new_children(2)
        assert taken["quantity"].tolist() == [300, 100]
        run.report(taken, 2)  # 40,004 USD filled
        # an offer within parent 1's limit: 300 x 100.005 = 30,001.50 would make 70,005.50
        run.publish(add(2, 2, LIMIT, 300, 900))
        assert run.risk_rejects(1) == [("CREDIT_LIMIT", 7_000_550, 6_000_000, 2)]
        assert run.done(1) == (0, 3, "CREDIT_LIMIT")
        assert run.done(2) == (400, 0, "NONE")
    cfg = config(default_max_position_shares=500, trading_day=20260105)
    with Engine(cfg, name=name) as engine:
        run = Run(engine)
        run.publish(book_events())
        engine.submit_parent(1, "AAPL", "buy", 300, limit_price_ticks=LIMIT)
        engine.submit_parent(2, "AAPL", "buy", 400)
        run.settle()
        run.report(run.new_children(2), 2)  # position 400
        run.publish(add(2, 2, LIMIT, 300, 900))
        assert run.risk_rejects(1) == [("POSITION_LIMIT", 700, 500, 2)]
        assert run.done(1) == (0, 3, "POSITION_LIMIT")
        # selling brings the position back down
        engine.submit_parent(3, "AAPL", "sell", 300)
        run.settle()
        sold = run.new_children(3)
        assert sold["quantity"].sum() == 300
        run.report(sold, 2)  # position 100
        engine.submit_parent(4, "AAPL", "buy", 350, limit_price_ticks=LIMIT)
        run.settle()
        assert run.new_children(4)["quantity"].tolist() == [300]  # |100 + 300| <= 500
        # restored state replaces what the fills made: 480 held + 300 open + 10 > 500
        state = engine.set_account_state(0, "AAPL", 480, 0.0)
        refused = engine.submit_parent(5, "AAPL", "buy", 10, limit_price_ticks=LIMIT)
        run.settle()
        assert run.answer(state) == ("ACCOUNT_STATE", "NONE", 480, 0)
        assert run.answer(refused) == ("COMMAND_REJECTED", "POSITION_LIMIT", 790, 500)


def test_a_restricted_instrument_stops_a_working_parent(name: str) -> None:
    with Engine(config(), name=name) as engine:
        run = Run(engine)
        run.publish(book_events())
        engine.submit_parent(1, "AAPL", "buy", 300, limit_price_ticks=LIMIT)
        run.settle()
        engine.update_config(lambda c: c.replace(risk=c.risk.replace(restricted_symbols=("AAPL",))))
        run.publish(add(2, 2, LIMIT, 300, 900))
        assert run.risk_rejects(1) == [("RESTRICTED", 0, 0, 2)]
        assert run.done(1) == (0, 3, "RESTRICTED")


def test_a_stopped_parent_cancels_its_open_children_first(name: str) -> None:
    with Engine(config(max_orders_per_second=1000), name=name) as engine:
        run = Run(engine)
        run.publish(book_events())
        engine.submit_parent(1, "AAPL", "buy", 1_000, limit_price_ticks=ASK)
        run.settle()
        open_children = run.new_children(1)
        assert len(open_children) == 2
        # the account is switched off under the parent (a control process writing the block)
        control = _core.EngineControl.attach(name)
        try:
            params = control.params()
            params["account_enabled_mask"] = 0
            control.write_params(params)
        finally:
            control.close()
        engine.wait_params_applied()
        run.publish(add(0, 2, ASK, 100, 900))
        assert run.risk_rejects(1) == [("UNKNOWN_ACCOUNT", 0, 0, 0)]
        assert sorted(run.cancels()["child_order_id"]) == sorted(open_children["child_order_id"])
        assert run.done(1) is None  # done once its children are
        run.report(open_children[:1], 2)
        run.report(open_children[1:], 3)
        assert run.done(1) == (300, 3, "UNKNOWN_ACCOUNT")
        assert engine.counters()["open_orders"] == 0


def test_halted_cancels_every_open_child_pauses_parents_and_resumes_them(name: str) -> None:
    events = []
    with Engine(config(), name=name) as engine:
        engine.on_operator_event.append(events.append)
        run = Run(engine)
        run.publish(book_events())
        engine.submit_parent(1, "AAPL", "buy", 1_000, limit_price_ticks=ASK)
        engine.submit_parent(2, "AAPL", "sell", 200, limit_price_ticks=BID)
        run.settle()
        open_children = run.new_children()
        assert len(open_children) == 3  # two buys at 100.01, one sell at 100.00
        engine.halt(operator="alice", reason="runaway test")
        run.settle()
        assert engine.counters()["risk_state"] == "halted"
        assert sorted(run.cancels()["child_order_id"]) == sorted(open_children["child_order_id"])
        state = run.kinds(_core.AuditKind.RISK_STATE)
        assert state["value_a"].tolist() == [2] and state["value_b"].tolist() == [0]
        assert state["reference"].tolist() == [engine.params()["version"]]
        refused = engine.submit_parent(3, "AAPL", "buy", 100)
        run.report(open_children, 3)  # the venues confirm the cancels
        run.publish(add(0, 2, ASK, 100, 900))  # new liquidity: paused parents do not take it
        assert run.answer(refused) == ("COMMAND_REJECTED", "HALTED", 0, 0)
        before = len(run.new_children())
        assert before == 3 and run.done(1) is None and run.done(2) is None
        engine.resume(operator="alice", reason="fixed")
        run.settle()
        resumed = run.new_children()[before:]
        assert set(resumed["parent_order_id"].tolist()) == {1, 2}  # both sweep again
        assert engine.counters()["risk_state"] == "active"
    assert [(e["operator"], e["action"], e["reason"], e["detail"]) for e in events] == [
        ("alice", "risk_state", "runaway test", "ACTIVE -> HALTED"),
        ("alice", "risk_state", "fixed", "HALTED -> ACTIVE")]


def test_reducing_lets_only_position_reducing_orders_out(name: str) -> None:
    with Engine(config(trading_day=20260105), name=name) as engine:
        run = Run(engine)
        run.publish(book_events())
        engine.set_account_state(0, "AAPL", -300, 0.0)  # short 300
        engine.reduce(operator="bob", reason="end of day")
        increase = engine.submit_parent(1, "AAPL", "sell", 100)
        too_big = engine.submit_parent(2, "AAPL", "buy", 400)
        engine.submit_parent(3, "AAPL", "buy", 300)
        run.settle()
        assert run.answer(increase) == ("COMMAND_REJECTED", "REDUCING", 100, 0)
        assert run.answer(too_big) == ("COMMAND_REJECTED", "REDUCING", 400, 300)
        assert run.new_children(3)["quantity"].tolist() == [300]
        # a second reducing parent is accepted, but its child would overshoot with the open one
        engine.submit_parent(4, "AAPL", "buy", 200)
        run.settle()
        assert run.risk_rejects(4)[0] == ("REDUCING", 500, 300, 0)
        assert run.done(4) is None
        assert np.all(run.new_children()["side"] == 1)

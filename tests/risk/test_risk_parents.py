"""Parent entry checks in a running engine: each refusal reaches the audit trail as
COMMAND_REJECTED with its reason, the measured value and the limit (docs/guardrails.md)."""

from __future__ import annotations

from risk_harness import Run, book_events, config

from sor.config import Account
from sor.engine import CommandKind, Engine


def test_each_entry_check_refuses_with_its_values(name: str) -> None:
    cfg = config({"instruments[AAPL].reference_price_ticks": 980_000},
                 max_parent_quantity_shares=5_000, max_order_quantity_shares=5_000,
                 max_parent_notional_usd=100_000.0, reference_collar_bps=100.0,
                 restricted_symbols=["MSFT"])
    with Engine(cfg, name=name) as engine:
        run = Run(engine)
        run.publish(book_events())
        e = engine
        ids = {
            "restricted": e.submit_parent(1, "MSFT", "buy", 100),
            "quantity": e.submit_parent(2, "AAPL", "buy", 6_000),
            # 2,000 x 100.01 USD at the far touch
            "notional": e.submit_parent(3, "AAPL", "buy", 2_000),
            # a buy limit 2.05% over the 98.00 reference (collar 1%)
            "collar": e.submit_parent(4, "AAPL", "buy", 100, limit_price_ticks=1_000_100),
            # a sell limit below it is aggressive too; one above it is passive
            "collar_sell": e.submit_parent(5, "AAPL", "sell", 100, limit_price_ticks=960_000),
            "passive_sell": e.submit_parent(6, "AAPL", "sell", 100, limit_price_ticks=1_100_000),
            "account": e.submit_parent(7, "AAPL", "sell", 100, limit_price_ticks=1_100_000,
                                       account_id=3),
            "duplicate": e.submit_parent(6, "AAPL", "sell", 100, limit_price_ticks=1_100_000),
            "instrument": run.command(kind=CommandKind.NEW_PARENT, parent_order_id=8,
                                      instrument_id=5000, side=1, quantity=100),
            "halt_retired": run.command(kind=4),
            "resume_retired": run.command(kind=5),
        }
        run.settle()
        answers = {key: run.answer(command) for key, command in ids.items()}
    assert answers == {
        "restricted": ("COMMAND_REJECTED", "RESTRICTED", 0, 0),
        "quantity": ("COMMAND_REJECTED", "MAX_PARENT_QUANTITY", 6_000, 5_000),
        "notional": ("COMMAND_REJECTED", "MAX_PARENT_NOTIONAL", 20_002_000, 10_000_000),
        "collar": ("COMMAND_REJECTED", "REFERENCE_COLLAR", 20_510, 10_000),
        "collar_sell": ("COMMAND_REJECTED", "REFERENCE_COLLAR", 20_408, 10_000),
        "passive_sell": ("COMMAND_ACCEPTED", "NONE", 100, 1_100_000),
        "account": ("COMMAND_REJECTED", "UNKNOWN_ACCOUNT", 0, 0),
        "duplicate": ("COMMAND_REJECTED", "DUPLICATE_PARENT", 0, 0),
        "instrument": ("COMMAND_REJECTED", "INVALID_INSTRUMENT", 0, 0),
        "halt_retired": ("COMMAND_REJECTED", "INVALID_COMMAND", 0, 0),
        "resume_retired": ("COMMAND_REJECTED", "INVALID_COMMAND", 0, 0),
    }


def test_client_order_hashes_are_unique_per_trading_day(name: str) -> None:
    cfg = config(trading_day=20260105)
    with Engine(cfg, name=name, client_order_capacity=16) as engine:
        run = Run(engine)
        run.publish(book_events())
        resting = {"side": "sell", "quantity_shares": 100, "limit_price_ticks": 1_100_000}
        first = engine.submit_parent(1, "AAPL", client_order_hash=0xABCDEF, **resting)
        again = engine.submit_parent(2, "AAPL", client_order_hash=0xABCDEF, **resting)
        no_hash = [engine.submit_parent(3, "AAPL", **resting),
                   engine.submit_parent(4, "AAPL", **resting)]
        # the set holds 14 of 16 slots (7/8) and refuses the 15th rather than grow
        more = [engine.submit_parent(10 + i, "AAPL", client_order_hash=1_000 + i, **resting)
                for i in range(14)]
        run.settle()
        assert run.answer(first)[0] == "COMMAND_ACCEPTED"
        assert run.answer(again) == ("COMMAND_REJECTED", "DUPLICATE_CLIENT_ORDER_ID", 0, 0)
        assert [run.answer(c)[0] for c in no_hash] == ["COMMAND_ACCEPTED"] * 2
        assert [run.answer(c)[0] for c in more[:13]] == ["COMMAND_ACCEPTED"] * 13
        assert run.answer(more[13]) == ("COMMAND_REJECTED", "CAPACITY", 14, 14)
        # a new trading day clears the set: the same ClOrdID is new again
        engine.update_config(lambda c: c.replace(risk=c.risk.replace(trading_day=20260106)))
        after = engine.submit_parent(40, "AAPL", client_order_hash=0xABCDEF, **resting)
        run.settle()
        assert run.answer(after)[0] == "COMMAND_ACCEPTED"


def test_credit_and_position_at_entry_and_the_account_state_command(name: str) -> None:
    accounts = (Account(name="ACCT1", credit_limit_usd=100_000.0, max_position_shares=1_000),)
    cfg = config(accounts=accounts, default_credit_limit_usd=10_000.0,
                 default_max_position_shares=150, trading_day=20260105)
    with Engine(cfg, name=name) as engine:
        run = Run(engine)
        run.publish(book_events())
        resting = {"quantity_shares": 100, "limit_price_ticks": 10_000}  # 1.00 USD: buys rest
        credit = engine.submit_parent(1, "AAPL", "buy", 200, limit_price_ticks=999_000)
        position = engine.submit_parent(2, "AAPL", "buy", 200, limit_price_ticks=10_000)  # 200 USD
        fits = engine.submit_parent(3, "AAPL", "buy", **resting, account_id=1)
        # restored after a restart: account 1 holds 950 shares and bought 45,000 USD today
        state = engine.set_account_state(1, "AAPL", 950, 45_000.0)
        over_position = engine.submit_parent(4, "AAPL", "buy", **resting, account_id=1)
        reducing = engine.submit_parent(5, "AAPL", "sell", 100, limit_price_ticks=1_100_000,
                                        account_id=1)
        bad_account = engine.set_account_state(9, "AAPL", 1, 1.0)
        bad_notional = engine.set_account_state(1, "AAPL", 1, -5.0)
        run.settle()
        assert run.answer(credit) == ("COMMAND_REJECTED", "CREDIT_LIMIT", 1_998_000, 1_000_000)
        assert run.answer(position) == ("COMMAND_REJECTED", "POSITION_LIMIT", 200, 150)
        assert run.answer(fits)[0] == "COMMAND_ACCEPTED"
        assert run.answer(state) == ("ACCOUNT_STATE", "NONE", 950, 4_500_000)
        # 950 held + 100 more (parent 3 has no child: no open shares)
        assert run.answer(over_position) == ("COMMAND_REJECTED", "POSITION_LIMIT", 1_050, 1_000)
        assert run.answer(reducing)[0] == "COMMAND_ACCEPTED"
        assert run.answer(bad_account) == ("COMMAND_REJECTED", "UNKNOWN_ACCOUNT", 0, 0)
        assert run.answer(bad_notional) == ("COMMAND_REJECTED", "INVALID_COMMAND", 0, 0)
        # credit: 45,000 USD filled + 40 x 110.00 fits 100,000; + 600 x 110.00 does not
        fits_credit = engine.submit_parent(6, "AAPL", "sell", 40, limit_price_ticks=1_100_000,
                                           account_id=1)
        over_credit = engine.submit_parent(7, "AAPL", "sell", 600, limit_price_ticks=1_100_000,
                                           account_id=1)
        run.settle()
        assert run.answer(fits_credit)[0] == "COMMAND_ACCEPTED"
        assert run.answer(over_credit) == ("COMMAND_REJECTED", "CREDIT_LIMIT", 11_100_000,
                                           10_000_000)
        # a new trading day forgets positions and credit used
        engine.update_config(lambda c: c.replace(risk=c.risk.replace(trading_day=20260106)))
        fresh = engine.submit_parent(8, "AAPL", "buy", **resting, account_id=1)
        run.settle()
        assert run.answer(fresh)[0] == "COMMAND_ACCEPTED"

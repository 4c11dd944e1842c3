"""sor.fix.store: sequence numbers and sent messages survive a process kill; a torn last
record is dropped on open; a reset starts a new session; a random run matches a dict model."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap

import pytest

from sor.errors import FixStoreError
from sor.fix.store import MessageStore


def message(seq_num: int, size: int = 120) -> bytes:
    return b"8=FIX.4.4\x0135=D\x0134=%d\x01" % seq_num + b"x" * size + b"\x01"


def test_a_new_store_starts_at_one_and_one(tmp_path):
    with MessageStore(tmp_path / "s") as store:
        assert (store.next_sender_seq_num, store.next_target_seq_num) == (1, 1)
        assert store.message_count == 0 and store.get_messages(1, 100) == []
        assert store.creation_time_ns > 0 and store.generation == 1
    assert store.closed


def test_messages_and_numbers_survive_a_reopen(tmp_path):
    with MessageStore(tmp_path / "s") as store:
        for seq in (1, 2, 4, 5):          # 3 is an admin message: its number only
            store.append(seq, message(seq))
        store.set_next_sender_seq_num(6)
        store.set_next_target_seq_num(9)
    with MessageStore(tmp_path / "s") as store:
        assert (store.next_sender_seq_num, store.next_target_seq_num) == (6, 9)
        assert store.get_messages(1, 5) == [(s, message(s)) for s in (1, 2, 4, 5)]
        assert store.get_messages(3, 4) == [(4, message(4))]
        assert store.get_messages(5, 4) == []
        assert store.get_messages(2, 10**9) == [(s, message(s)) for s in (2, 4, 5)]


def test_append_advances_the_next_sender_number(tmp_path):
    with MessageStore(tmp_path / "s") as store:
        store.append(1, message(1))
        assert store.next_sender_seq_num == 2
        store.append(7, message(7))
        assert store.next_sender_seq_num == 8


def test_store_survives_kill_9(tmp_path):
    """A child process stores 500 messages and numbers, then kills itself with SIGKILL: a new
    store object sees everything that was stored before the kill."""
    path = tmp_path / "s"
    script = textwrap.dedent(f"""
        import os, signal
        from sor.fix.store import MessageStore
        store = MessageStore({str(path)!r})
        for seq in range(1, 501):
            store.append(seq, b"8=FIX.4.4\\x0134=%d\\x01" % seq + b"y" * (seq % 300))
        store.set_next_target_seq_num(321)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run([sys.executable, "-c", script], env=environment, timeout=60)
    assert result.returncode == -signal.SIGKILL
    with MessageStore(path) as store:
        assert (store.next_sender_seq_num, store.next_target_seq_num) == (501, 321)
        messages = store.get_messages(1, 500)
        assert [seq for seq, _ in messages] == list(range(1, 501))
        assert all(raw == b"8=FIX.4.4\x0134=%d\x01" % seq + b"y" * (seq % 300)
                   for seq, raw in messages)


def _end_of_log(path) -> int:
    data = (path / "messages").read_bytes()
    return len(data.rstrip(b"\0"))


def test_a_torn_last_record_is_dropped_and_the_log_continues(tmp_path, caplog):
    path = tmp_path / "s"
    with MessageStore(path) as store:
        for seq in (1, 2, 3):
            store.append(seq, message(seq))
    end = _end_of_log(path)
    with open(path / "messages", "r+b") as log:
        log.seek(end - 40)                 # the middle of record 3's payload: torn write
        log.write(b"\0" * 20)
    with MessageStore(path) as store:
        assert [seq for seq, _ in store.get_messages(1, 3)] == [1, 2]
        assert "torn or corrupt record" in caplog.text
        store.append(4, message(4))
    with MessageStore(path) as store:
        assert store.get_messages(1, 10) == [(1, message(1)), (2, message(2)), (4, message(4))]


def test_a_header_without_its_payload_is_dropped(tmp_path):
    """A crash after the header of a record but before its payload (header written last makes
    this impossible for our writer; garbage of any kind past the end is dropped the same)."""
    path = tmp_path / "s"
    with MessageStore(path) as store:
        store.append(1, message(1))
    end = _end_of_log(path)
    with open(path / "messages", "r+b") as log:
        log.seek(end)
        log.write(b"\x40\x00\x00\x00\x12\x34\x56\x78garbage")
    with MessageStore(path) as store:
        assert store.get_messages(1, 5) == [(1, message(1))]
        store.append(2, message(2, size=3))    # shorter than the garbage it overwrites
    with MessageStore(path) as store:
        assert store.get_messages(1, 5) == [(1, message(1)), (2, message(2, size=3))]


def test_reset_starts_a_new_session(tmp_path):
    path = tmp_path / "s"
    with MessageStore(path) as store:
        for seq in range(1, 6):
            store.append(seq, message(seq))
        store.set_next_target_seq_num(17)
        store.reset()
        assert (store.next_sender_seq_num, store.next_target_seq_num) == (1, 1)
        assert store.get_messages(1, 100) == [] and store.generation == 2
        store.append(1, message(100))
    with MessageStore(path) as store:
        assert store.get_messages(1, 100) == [(1, message(100))]
        assert store.generation == 2


def test_records_of_an_older_generation_are_ignored(tmp_path):
    """A crash between the generation bump and the zeroing of the old log leaves old records:
    they are not messages of the new session."""
    path = tmp_path / "s"
    with MessageStore(path) as store:
        store.append(1, message(1))
        store.append(2, message(2))
    old_log = (path / "messages").read_bytes()
    with MessageStore(path) as store:
        store.reset()
    (path / "messages").write_bytes(old_log)
    with MessageStore(path) as store:
        assert store.get_messages(1, 10) == []
        assert (store.next_sender_seq_num, store.next_target_seq_num) == (1, 1)


def test_the_log_grows_past_its_first_chunk(tmp_path):
    path = tmp_path / "s"
    with MessageStore(path) as store:
        for seq in range(1, 6001):
            store.append(seq, message(seq, size=400))
        assert (path / "messages").stat().st_size > 2 << 20
    with MessageStore(path) as store:
        assert store.message_count == 6000
        assert store.get_messages(5999, 6000) == [(5999, message(5999, 400)),
                                                  (6000, message(6000, 400))]


def test_a_store_in_use_is_refused(tmp_path):
    with MessageStore(tmp_path / "s"):
        with pytest.raises(FixStoreError, match="in use"):
            MessageStore(tmp_path / "s")
    MessageStore(tmp_path / "s").close()


def test_bad_arguments_and_files_are_refused_by_name(tmp_path):
    with pytest.raises(FixStoreError, match="sync must be one of write, fsync"):
        MessageStore(tmp_path / "s", sync="never")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "seqnums").write_bytes(b"x" * 64)
    with pytest.raises(FixStoreError, match="magic") as caught:
        MessageStore(tmp_path / "bad")
    assert caught.value.path == str(tmp_path / "bad")
    with MessageStore(tmp_path / "s") as store:
        with pytest.raises(FixStoreError, match=">= 1"):
            store.set_next_target_seq_num(0)
    with pytest.raises(FixStoreError, match="closed"):
        store.append(1, b"x")


def test_fsync_mode_stores_the_same(tmp_path):
    with MessageStore(tmp_path / "s", sync="fsync") as store:
        store.append(1, message(1))
        store.set_next_target_seq_num(3)
    with MessageStore(tmp_path / "s", sync="fsync") as store:
        assert store.get_messages(1, 1) == [(1, message(1))]
        assert store.next_target_seq_num == 3


def test_random_operations_match_a_dict_model(tmp_path):
    """Appends, number updates, resets and reopens in random order agree with a plain model."""
    rng = random.Random(7)
    path = tmp_path / "s"
    store = MessageStore(path)
    model: dict[int, bytes] = {}
    sender, target = 1, 1
    try:
        for _ in range(3000):
            action = rng.random()
            if action < 0.6:
                seq = sender + rng.choice((0, 0, 0, 1, 3))
                raw = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300)))
                store.append(seq, raw)
                model[seq] = raw
                sender = seq + 1
            elif action < 0.75:
                target += rng.randrange(1, 4)
                store.set_next_target_seq_num(target)
            elif action < 0.77:
                store.reset()
                model.clear()
                sender, target = 1, 1
            elif action < 0.8:
                store.close()
                store = MessageStore(path)
            else:
                begin = rng.randrange(1, sender + 2)
                end = rng.randrange(begin - 1, sender + 5)
                expected = [(seq, model[seq]) for seq in sorted(model) if begin <= seq <= end]
                assert store.get_messages(begin, end) == expected
            assert (store.next_sender_seq_num, store.next_target_seq_num) == (sender, target)
    finally:
        store.close()

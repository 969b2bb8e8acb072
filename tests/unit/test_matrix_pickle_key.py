"""The passphrase of the bot's encryption store (``pickle_key.py``): made once and kept owner-only beside the
store, never nio's public default; a store made with that default opens, sealed again with the new one."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import vodozemac
from nio.crypto import Olm
from nio.crypto.sessions import Session
from nio.store import SqliteStore

from adapters.matrix.crypto_store import prepare_directory, store_file
from adapters.matrix.pickle_key import (
    KEY_FILE,
    LEGACY_KEY,
    StoreKeyMismatch,
    key_file,
    opens,
    pickle_key_problem,
    store_pickle_key,
)

USER, DEVICE, ROOM = "@bot:example.org", "BOTDEVICE", "!room:example.org"


def _make_store(store_dir: Path, passphrase: str) -> str:
    """A store as nio makes it: the device's identity, an Olm session with a staff device and a room key
    (its own, from the outbound group session it made). Returns the device's curve25519 key."""
    store = SqliteStore(USER, DEVICE, str(store_dir), passphrase)
    olm = Olm(USER, DEVICE, store)
    olm.create_outbound_group_session(ROOM)  # the room key: kept as an inbound session too
    staff = vodozemac.Account()
    staff.generate_one_time_keys(1)
    [one_time_key] = staff.one_time_keys.values()
    session = olm.account._account.create_outbound_session(staff.curve25519_key, one_time_key)
    store.save_session(staff.curve25519_key.to_base64(), Session(session=session))
    store.database.close()
    return str(olm.account.identity_keys["curve25519"])


def _counts(db: Path) -> tuple[int, int, int]:
    with closing(sqlite3.connect(db)) as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("accounts", "olmsessions", "megolminboundsessions")
        )


def _reopened(store_dir: Path, passphrase: str) -> tuple[str, int, int]:
    """What nio reads from the store with ``passphrase``: identity, Olm sessions, room keys."""
    store = SqliteStore(USER, DEVICE, str(store_dir), passphrase)
    try:
        account = store.load_account()
        assert account is not None
        sessions = store.load_sessions()
        room_keys = store.load_inbound_group_sessions()
        return account.identity_keys["curve25519"], len(list(sessions.values())), len(list(room_keys))
    finally:
        store.database.close()


def test_a_new_store_gets_a_random_key_kept_owner_only(tmp_path: Path) -> None:
    store_dir = prepare_directory(tmp_path / "store")
    key = store_pickle_key(store_dir, USER, DEVICE)
    path = key_file(store_dir)
    assert path == store_dir / KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert key != LEGACY_KEY and len(key) >= 40
    assert store_pickle_key(store_dir, USER, DEVICE) == key  # kept: the same at every start
    assert store_pickle_key(prepare_directory(tmp_path / "other"), USER, DEVICE) != key

    curve = _make_store(store_dir, key)
    assert store_pickle_key(store_dir, USER, DEVICE) == key
    assert _reopened(store_dir, key) == (curve, 1, 1)


def test_a_store_made_with_the_old_default_opens_and_is_sealed_again(tmp_path: Path) -> None:
    store_dir = prepare_directory(tmp_path / "store")
    curve = _make_store(store_dir, LEGACY_KEY)
    db = store_file(store_dir, USER, DEVICE)
    assert _counts(db) == (1, 1, 1)

    key = store_pickle_key(store_dir, USER, DEVICE)
    assert key != LEGACY_KEY
    assert _reopened(store_dir, key) == (curve, 1, 1)  # the same identity, sessions and room keys
    with closing(sqlite3.connect(db)) as conn:
        [(account,)] = conn.execute("SELECT account FROM accounts").fetchall()
    assert opens(account, key) and not opens(account, LEGACY_KEY)  # the public default opens nothing now
    assert store_pickle_key(store_dir, USER, DEVICE) == key


def test_a_crash_between_making_the_key_and_sealing_is_finished_at_the_next_start(tmp_path: Path) -> None:
    store_dir = prepare_directory(tmp_path / "store")
    curve = _make_store(store_dir, LEGACY_KEY)
    key_file(store_dir).write_text("made-but-not-used-yet\n")  # the key was kept, the store not sealed yet
    assert store_pickle_key(store_dir, USER, DEVICE) == "made-but-not-used-yet"
    assert _reopened(store_dir, "made-but-not-used-yet") == (curve, 1, 1)


def test_a_lost_key_file_is_said_and_nothing_is_overwritten(tmp_path: Path) -> None:
    store_dir = prepare_directory(tmp_path / "store")
    key = store_pickle_key(store_dir, USER, DEVICE)
    _make_store(store_dir, key)
    key_file(store_dir).unlink()
    with pytest.raises(StoreKeyMismatch, match="pickle-key is missing"):
        store_pickle_key(store_dir, USER, DEVICE)
    assert not key_file(store_dir).exists()  # no new key that would hide the loss

    key_file(store_dir).write_text("some other key\n")
    with pytest.raises(StoreKeyMismatch, match="does not open them"):
        store_pickle_key(store_dir, USER, DEVICE)
    key_file(store_dir).write_text("")
    with pytest.raises(StoreKeyMismatch, match="is empty"):
        store_pickle_key(store_dir, USER, DEVICE)


def test_doctor_reads_whether_the_keys_would_open_without_writing(tmp_path: Path) -> None:
    store_dir = prepare_directory(tmp_path / "store")
    assert pickle_key_problem(store_dir, USER, DEVICE) is None  # nothing there yet
    _make_store(store_dir, LEGACY_KEY)
    assert pickle_key_problem(store_dir, USER, DEVICE) is None  # the old default: sealed again at the next start
    assert not key_file(store_dir).exists()  # doctor made nothing

    key = store_pickle_key(store_dir, USER, DEVICE)
    assert pickle_key_problem(store_dir, USER, DEVICE) is None
    key_file(store_dir).unlink()
    assert "pickle-key file is missing" in str(pickle_key_problem(store_dir, USER, DEVICE))
    key_file(store_dir).write_text(key[::-1])
    assert "does not open them" in str(pickle_key_problem(store_dir, USER, DEVICE))

"""The bot's encryption store as ``sitechat doctor`` reads it (``crypto_store.py``), and the encrypted
events it waits for keys of (``undecryptable.py``): kept across a restart, given up on once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from nio.crypto import Olm
from nio.store import SqliteStore

from adapters.matrix.crypto_store import StoredKeys, prepare_directory, read_stored_keys, store_file
from adapters.matrix.format import thread_relation
from adapters.matrix.undecryptable import Undecryptable
from bridge.store.state import SingleInstanceLease

USER, DEVICE = "@bot:example.org", "BOTDEVICE"


def test_the_store_is_read_without_being_opened_for_writing(tmp_path: Path) -> None:
    store_dir = prepare_directory(tmp_path / "store")
    assert store_dir.stat().st_mode & 0o077 == 0  # it holds private keys: the owner's alone
    assert read_stored_keys(store_dir, USER, DEVICE) is None

    store = SqliteStore(USER, DEVICE, str(store_dir), "DEFAULT_KEY")
    Olm(USER, DEVICE, store)  # a new identity for the device, as nio makes it at the first start
    store.database.close()
    assert store_file(store_dir, USER, DEVICE).exists()
    assert read_stored_keys(store_dir, USER, DEVICE) == StoredKeys(account=True, published=False, room_keys=0)
    assert read_stored_keys(store_dir, USER, "OTHERDEVICE") is None

    other = SqliteStore(USER, "OTHERDEVICE", str(store_dir), "DEFAULT_KEY")
    other.database.close()  # a file with the tables but no identity in it
    assert read_stored_keys(store_dir, USER, "OTHERDEVICE") == StoredKeys(False, False, 0)


def test_a_store_path_that_is_a_file_cannot_be_prepared(tmp_path: Path) -> None:
    (tmp_path / "store").write_text("not a directory")
    with pytest.raises(OSError):
        prepare_directory(tmp_path / "store")


class MemoryState:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        return self.values.get(key)

    async def put(self, key: str, value: str) -> None:
        self.values[key] = value

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[SingleInstanceLease]:
        yield SingleInstanceLease()


def _encrypted(event_id: str, root: str | None = "$root") -> dict[str, Any]:
    content: dict[str, Any] = {
        "algorithm": "m.megolm.v1.aes-sha2",
        "ciphertext": "AwgAEhAA",
        "device_id": "SAMPHONE",
        "sender_key": "c2VuZGVyIGtleQ",
        "session_id": "c2Vzc2lvbg",
    }
    if root:
        content["m.relates_to"] = thread_relation(root, root)
    return {"type": "m.room.encrypted", "event_id": event_id, "sender": "@sam:example.org", "content": content}


NO_CRYPTO = SimpleNamespace(olm=None)  # a client whose store is not open: nothing to ask, nothing to decrypt


async def test_unreadable_events_are_kept_across_a_restart_and_given_up_once() -> None:
    state = MemoryState()
    waiting = Undecryptable(state, wait_seconds=3600)
    await waiting.load()
    assert waiting.seconds_to_next_give_up() is None
    await waiting.add(NO_CRYPTO, "!room:example.org", _encrypted("$a"))  # type: ignore[arg-type]
    await waiting.add(NO_CRYPTO, "!room:example.org", _encrypted("$a"))  # type: ignore[arg-type]
    await waiting.add(NO_CRYPTO, "!room:example.org", {"type": "m.room.message", "event_id": "$m"})  # type: ignore[arg-type]
    assert "$a" in waiting and "$m" not in waiting
    assert 3500 < (waiting.seconds_to_next_give_up() or 0) <= 3600
    assert await waiting.given_up() == []
    assert await waiting.readable(NO_CRYPTO) == []  # type: ignore[arg-type]

    restarted = Undecryptable(state, wait_seconds=0)
    await restarted.load()
    assert "$a" in restarted
    [given_up] = await restarted.given_up()
    assert given_up.room_id == "!room:example.org"
    assert (given_up.sealed.event_id, given_up.sealed.sender, given_up.sealed.root) == (
        "$a",
        "@sam:example.org",
        "$root",
    )
    assert await restarted.given_up() == []

    again = Undecryptable(state)
    await again.load()
    assert "$a" not in again  # told once, and not after the next restart either

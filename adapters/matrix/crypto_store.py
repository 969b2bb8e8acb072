"""The bot's encryption store on disk (``MATRIX_STORE_PATH``), looked at without opening it for writing.

matrix-nio keeps one SQLite file per (user, device) in the store directory: the device's Olm account
(its identity and one-time keys), its Olm sessions with other devices, the room keys it received and
the devices it knows with their trust. Losing it means staff see "unable to decrypt" for what was
sent to the bot's old device: it is what an admin backs up with the database.

Reading it here is read-only (``mode=ro``), so ``sitechat doctor`` can say whether the keys are there
while the service runs, and the session can tell a fresh store from a lost one before nio would
quietly create a new account in it.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path


def store_file(store_path: str | Path, user_id: str, device_id: str) -> Path:
    """nio's file name for a device's store (``SqliteStore``: ``{user_id}_{device_id}.db``)."""
    return Path(store_path) / f"{user_id}_{device_id}.db"


@dataclass(frozen=True)
class StoredKeys:
    """What the store holds for one device."""

    #: the device's identity (Olm account) is there
    account: bool
    #: and its public keys were published to the homeserver
    published: bool
    #: room keys it can decrypt with (received, or its own outbound sessions)
    room_keys: int


def read_stored_keys(store_path: str | Path, user_id: str, device_id: str) -> StoredKeys | None:
    """What the store holds for the device; None when it has no file for it. Raises ``OSError`` or
    ``sqlite3.Error`` when the file is there but cannot be read."""
    path = store_file(store_path, user_id, device_id)
    if not path.exists():
        return None
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "accounts" not in tables:
            return StoredKeys(account=False, published=False, room_keys=0)
        row = db.execute(
            "SELECT id, shared FROM accounts WHERE user_id = ? AND device_id = ?", (user_id, device_id)
        ).fetchone()
        if row is None:
            return StoredKeys(account=False, published=False, room_keys=0)
        keys = 0
        if "megolminboundsessions" in tables:
            query = "SELECT count(*) FROM megolminboundsessions WHERE account_id = ?"
            keys = db.execute(query, (row[0],)).fetchone()[0]
        return StoredKeys(account=True, published=bool(row[1]), room_keys=int(keys))


def prepare_directory(store_path: str | Path) -> Path:
    """The store directory, created (owner only: it holds private keys) when missing. Raises ``OSError``
    when it cannot be created or written."""
    path = Path(store_path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"{path} is not writable by this user")
    return path

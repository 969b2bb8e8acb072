"""The passphrase the bot's encryption store is sealed with: made once, kept beside the store.

matrix-nio encrypts ("pickles") the private keys it writes into the store — the device's Olm account,
its Olm sessions, the room keys it received — with a passphrase, by default the public constant
``DEFAULT_KEY``: anyone holding a copy of the store file could read every key in it. The bridge uses a
random passphrase instead, made at the first start and kept in ``MATRIX_STORE_PATH/pickle-key`` (owner
read/write only, like the directory). Back it up with the store: without it the store cannot be read.

A store made before (sealed with ``DEFAULT_KEY``) still opens: its pickles are sealed again with the new
passphrase in one SQLite transaction before nio opens the store (a crash in between leaves the old
store as it was, and the next start does it again).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import datetime
from pathlib import Path

from nio.crypto.sessions import InboundGroupSession, OlmAccount, Session

from adapters.matrix.crypto_store import store_file

#: matrix-nio's default passphrase, which every store made before this one was sealed with
LEGACY_KEY = "DEFAULT_KEY"
KEY_FILE = "pickle-key"


class StoreKeyMismatch(Exception):
    """The store holds keys that neither the kept passphrase nor the old default opens."""


def key_file(store_path: str | Path) -> Path:
    return Path(store_path) / KEY_FILE


def read_key(path: Path) -> str | None:
    """The kept passphrase; None when there is none yet. Raises ``OSError`` if it cannot be read."""
    try:
        key = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    if not key:
        raise StoreKeyMismatch(f"{path} is empty: restore it from the backup of the store")
    return key


def create_key(path: Path) -> str:
    """A new random passphrase, written owner-only; the one already there if another start was first."""
    key = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        found = read_key(path)
        assert found is not None
        return found
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key + "\n")
        out.flush()
        os.fsync(out.fileno())
    return key


def _account_pickle(db: Path, user_id: str, device_id: str) -> bytes | None:
    if not db.exists():
        return None
    with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "accounts" not in tables:
            return None
        row = conn.execute(
            "SELECT account FROM accounts WHERE user_id = ? AND device_id = ?", (user_id, device_id)
        ).fetchone()
    return _bytes(row[0]) if row is not None else None


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def opens(account: bytes, key: str) -> bool:
    """Whether ``key`` is the passphrase the account pickle was sealed with."""
    try:
        OlmAccount.from_pickle(account, key)
    except ValueError:  # vodozemac's pickle errors are ValueErrors
        return False
    return True


#: table → (its pickle column, its key column, how one of its pickles is sealed again)
_SEALED: dict[str, tuple[str, str, Callable[[bytes, str, str], bytes]]] = {
    "accounts": ("account", "id", lambda p, old, new: OlmAccount.from_pickle(p, old).pickle(new)),
    "olmsessions": (
        "session",
        "session_id",
        lambda p, old, new: Session.from_pickle(p, datetime.now(), old).pickle(new),
    ),
    "megolminboundsessions": (
        "session",
        "session_id",
        lambda p, old, new: InboundGroupSession.from_pickle(p, "", "", "", old).pickle(new),
    ),
}


def reseal(db: Path, old: str, new: str) -> int:
    """Every pickle in the store file sealed with ``new`` instead of ``old``, all or nothing; how many."""
    count = 0
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            for table, (column, key, again) in _SEALED.items():
                if table not in tables:
                    continue
                rows = conn.execute(f"SELECT {key}, {column} FROM {table}").fetchall()
                for row_key, pickle in rows:
                    sealed = again(_bytes(pickle), old, new)
                    conn.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (sealed, row_key))
                    count += 1
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return count


def store_pickle_key(store_path: str | Path, user_id: str, device_id: str) -> str:
    """The passphrase to open the device's store with: the kept one, made now if there is none; a store
    still sealed with nio's default is sealed again with it first. Raises :class:`StoreKeyMismatch` when
    the store's keys open with neither (the key file was lost or swapped), ``OSError`` or
    ``sqlite3.Error`` when the files cannot be read."""
    path = key_file(store_path)
    db = store_file(store_path, user_id, device_id)
    kept = read_key(path)
    account = _account_pickle(db, user_id, device_id)
    if kept is not None and (account is None or opens(account, kept)):
        return kept
    if account is not None and not opens(account, LEGACY_KEY):
        lost = "is missing" if kept is None else "does not open them"
        raise StoreKeyMismatch(
            f"{db} holds the device's keys but {path} {lost}: restore the store directory, with its "
            f"{KEY_FILE} file, from the backup"
        )
    key = kept if kept is not None else create_key(path)
    if account is not None:
        reseal(db, LEGACY_KEY, key)  # a store made before the bridge kept a passphrase of its own
    return key


def pickle_key_problem(store_path: str | Path, user_id: str, device_id: str) -> str | None:
    """What ``sitechat doctor`` says about the passphrase, read-only (the service may be running): why the
    device's keys in the store would not open; None when they would (or there are none yet)."""
    try:
        kept = read_key(key_file(store_path))
        account = _account_pickle(store_file(store_path, user_id, device_id), user_id, device_id)
    except (OSError, sqlite3.Error, StoreKeyMismatch) as exc:
        return f"the encryption store's passphrase cannot be read ({exc})"
    if account is None or (kept is not None and opens(account, kept)) or opens(account, LEGACY_KEY):
        return None  # opens; a store with the old default is sealed again at the next start
    lost = "is missing" if kept is None else "does not open them"
    return (
        f"MATRIX_STORE_PATH={store_path} holds the keys of device {device_id} but its {KEY_FILE} file {lost}: "
        "restore the store directory, with that file, from the backup"
    )

"""What is wrong with the Matrix side (``/readyz``, ``sitechat doctor``), and what an admin should know
that is no problem (the bot's device, the store holding its keys, each room's encryption)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import nio

from adapters.matrix.pickle_key import pickle_key_problem
from adapters.matrix.responses import LoginFailed, describe, describe_response
from adapters.matrix.session import MatrixSession
from adapters.matrix.trust import Trust

TRUST_WORDS = {
    Trust.MEMBERS: "every device of the room's members (MATRIX_TRUST=members, each pinned on first use)",
    Trust.VERIFIED: "only devices their owners cross-signed (MATRIX_TRUST=verified)",
}


def known_problems(session: MatrixSession) -> list[str]:
    """What the session already knows is wrong, without asking the homeserver (cheap enough for a
    readiness probe): a refused login, rooms it cannot join, an encryption store it cannot open."""
    problems = [f"Matrix: {session.login_problem}"] if session.login_problem else []
    problems += [f"Matrix: {problem}" for problem in session.join_problems.values()]
    if session.encryption.problem:
        problems.append(f"Matrix: {session.encryption.problem}")
    return problems


def store_access_problem(store_path: str) -> str | None:
    """Why the store directory could not be used by this user, as far as can be told without using it."""
    path = Path(store_path)
    if path.exists():
        if not path.is_dir():
            return f"MATRIX_STORE_PATH={store_path} is not a directory"
        if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            return f"MATRIX_STORE_PATH={store_path} is not readable and writable by this user"
        return None
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is None or not os.access(parent, os.W_OK | os.X_OK):
        return f"MATRIX_STORE_PATH={store_path} does not exist and cannot be created by this user"
    return None


async def check(session: MatrixSession, destinations: Sequence[str]) -> list[str]:
    client = session.open()
    problems: list[str] = []
    access = store_access_problem(session.encryption.store_path)
    if access:
        problems.append(f"Matrix: {access}; the bot keeps its encryption keys there")
    try:
        await session.ensure_logged_in()
    except LoginFailed:
        return [*problems, f"Matrix: {session.login_problem}; check MATRIX_PASSWORD / MATRIX_ACCESS_TOKEN"]
    except Exception as exc:
        return [*problems, f"Matrix: {session.homeserver} cannot be reached ({describe(exc)}); check MATRIX_HOMESERVER"]
    if session.encryption.problem:
        problems.append(f"Matrix: {session.encryption.problem}")
    elif session.device_id:
        sealed = pickle_key_problem(session.encryption.store_path, session.user_id, session.device_id)
        problems += [f"Matrix: {sealed}"] if sealed else []
    try:
        return problems + await _check_rooms(session, client, destinations)
    except Exception as exc:
        return [*problems, f"Matrix: {session.homeserver} stopped answering ({describe(exc)})"]


async def _check_rooms(session: MatrixSession, client: nio.AsyncClient, destinations: Sequence[str]) -> list[str]:
    who = await client.whoami()
    if not isinstance(who, nio.WhoamiResponse):
        return [f"Matrix: the bot's login no longer works ({describe_response(who)})"]
    joined = await client.joined_rooms()
    if not isinstance(joined, nio.JoinedRoomsResponse):
        return [f"Matrix: cannot list the bot's rooms ({describe_response(joined)})"]
    problems = []
    for room in destinations:
        if room not in joined.rooms:
            reason = session.join_problems.get(room) or f"the bot {session.user_id} is not in room {room}"
            problems.append(f"Matrix: {reason}; invite {session.user_id} to it (it joins by itself)")
            continue
        await session.refresh_encryption(room)
        refusal = session.refusal(room) if session.use_encryption else None
        if refusal:
            problems.append(f"Matrix: {refusal}")
    return problems


async def describe_facts(session: MatrixSession, destinations: Sequence[str]) -> list[str]:
    """The bot's device, what the store holds for it, each room's encryption (after ``check``)."""
    device = session.device_id
    if session.client is None or not session.logged_in or not device:
        return []
    encryption = session.encryption
    facts = [f"Matrix: the bot {session.user_id} uses device {device} (kept across restarts)"]
    store = encryption.store_path
    try:
        held = encryption.stored_keys(session.user_id, device)
    except (OSError, sqlite3.Error) as exc:
        facts.append(f"Matrix: the encryption store {store} cannot be read ({describe(exc)})")
        held = None
    else:
        if held is not None and held.account:
            published = "published to the homeserver" if held.published else "not yet published"
            facts.append(
                f"Matrix: the encryption store {store} holds the keys of device {device} ({published}; "
                f"{held.room_keys} room key(s)); back it up with the database"
            )
        else:
            facts.append(f"Matrix: the encryption store {store} holds no keys for device {device} yet (made at start)")
    for room in destinations:
        try:
            algorithm = await session.encryption_of(room)
        except RuntimeError as exc:
            facts.append(f"Matrix: {exc}")
            continue
        if algorithm:
            facts.append(
                f"Matrix: room {room} is end-to-end encrypted ({algorithm}); the bot encrypts what it posts and "
                f"shares room keys with {TRUST_WORDS[encryption.trust]}"
            )
        else:
            facts.append(f"Matrix: room {room} is not encrypted")
    return facts

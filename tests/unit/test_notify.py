"""``bridge/store/notify.py``: what one instance tells the others (the payloads: pure), and on PostgreSQL a
unit of work's signals sent in its own transaction — one statement, heard when it commits, never when it
rolls back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import event

from bridge.live import LiveHub, MessageChanged, NewMessage, Recheck, Signal, StatusChanged, Typing, signal_to_json
from bridge.model import Participant, Role, Status
from bridge.store.database import Database
from bridge.store.notify import MAX_PAYLOAD, Notifier, heard, payloads
from bridge.work import Core
from tests.harness import wait_until

SOME: list[tuple[str, Signal]] = [
    ("c1", NewMessage(7)),
    ("c1", MessageChanged("m1", 3, removed=True)),
    ("c2", StatusChanged(Status.CLOSED)),
    ("c3", Typing(Participant(Role.AGENT, "Grace", "https://example.org/grace.png"))),
]


@pytest.mark.parametrize("wake", [False, True])
def test_a_unit_of_work_is_one_payload_read_back_as_it_was_sent(wake: bool) -> None:
    [payload] = payloads("me", SOME, wake)
    assert json.loads(payload)["i"] == "me"
    assert heard(json.loads(payload)) == (SOME, wake)


def test_a_wake_alone_is_a_payload_and_nothing_at_all_is_none() -> None:
    [payload] = payloads("me", [], True)
    assert heard(json.loads(payload)) == ([], True)
    assert payloads("me", [], False) == []


def test_signals_that_do_not_fit_in_one_payload_go_in_several_each_within_the_limit() -> None:
    many: list[tuple[str, Signal]] = [(f"conversation-{i:04}", NewMessage(i)) for i in range(600)]
    sent = payloads("me", many, True)
    assert len(sent) > 1
    assert all(len(p.encode()) <= MAX_PAYLOAD for p in sent)
    read = [heard(json.loads(p)) for p in sent]
    assert [s for signals, _ in read for s in signals] == many
    assert all(wake for _, wake in read)


def test_a_signal_too_long_even_alone_is_left_out_not_the_others() -> None:
    long = Typing(Participant(Role.AGENT, "Grace", "https://example.org/" + "é" * MAX_PAYLOAD))
    sent = payloads("me", [("c1", long), ("c2", Recheck())], False)
    assert [heard(json.loads(p)) for p in sent] == [([("c2", Recheck())], False)]


# an instance of the previous version, during a rolling update, sends one signal per payload
FROM_OTHERS: dict[str, tuple[dict[str, Any], tuple[list[tuple[str, Signal]], bool]]] = {
    "previous version: a signal": (
        {"i": "x", "c": "c1", **signal_to_json(NewMessage(2))},
        ([("c1", NewMessage(2))], False),
    ),
    "previous version: wake": ({"i": "x", "k": "wake"}, ([], True)),
    "a signal this version does not know": ({"i": "x", "s": [["c1", {"k": "later"}]], "w": True}, ([], True)),
    "entries of the wrong shape": ({"i": "x", "s": [["c1"], "c2", ["c3", 4]]}, ([], False)),
    "signals not a list": ({"i": "x", "s": {"c1": 1}}, ([], False)),
    "nothing known": ({"i": "x", "z": 1}, ([], False)),
}


@pytest.mark.parametrize(("data", "expected"), FROM_OTHERS.values(), ids=FROM_OTHERS.keys())
def test_what_other_instances_send(data: dict[str, Any], expected: tuple[list[tuple[str, Signal]], bool]) -> None:
    assert heard(data) == expected


# -- on PostgreSQL -----------------------------------------------------------------------------------


class Peer:
    """Another instance's notifier, listening: what it heard."""

    def __init__(self, db: Database) -> None:
        self.notifier = Notifier(db)
        self.signals: list[tuple[str, Signal]] = []
        self.wakes = 0

    def on_signal(self, cid: str, signal: Signal) -> None:
        self.signals.append((cid, signal))

    def on_wake(self) -> None:
        self.wakes += 1


@pytest_asyncio.fixture
async def two(postgres_url: str) -> AsyncIterator[tuple[Database, Peer]]:
    here, there = Database(postgres_url), Database(postgres_url)
    await here.migrate()
    peer = Peer(there)
    await peer.notifier.listen(peer.on_signal, peer.on_wake)
    try:
        yield here, peer
    finally:
        await peer.notifier.stop()
        await here.close()
        await there.close()


def notify_statements(db: Database) -> list[int]:
    """The connection (its id) of each ``pg_notify`` statement run on ``db`` from now on."""
    seen: list[int] = []

    def before(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "pg_notify" in statement:
            seen.append(id(conn.connection.dbapi_connection))

    event.listen(db.engine.sync_engine, "before_cursor_execute", before)
    return seen


async def test_a_unit_of_work_tells_the_others_in_its_transaction_once(two: tuple[Database, Peer]) -> None:
    here, peer = two
    core = Core(here, {}, frozenset(), LiveHub(), announce=Notifier(here).announce)
    seen = notify_statements(here)
    woken = []
    core.wake_deliveries = lambda: woken.append(True)
    async with core.work() as work:
        for cid, signal in SOME:
            work.signal(cid, signal)
        work.deliveries = 1
        in_work = id((await work.conn.get_raw_connection()).dbapi_connection)
    await wait_until(lambda: peer.wakes, what="the peer to hear the unit of work")
    assert (peer.signals, peer.wakes, woken) == (SOME, 1, [True])
    assert seen == [in_work], "one pg_notify, on the unit of work's own connection"


async def test_a_unit_of_work_rolled_back_tells_nobody(two: tuple[Database, Peer]) -> None:
    here, peer = two
    core = Core(here, {}, frozenset(), LiveHub(), announce=Notifier(here).announce)
    with pytest.raises(RuntimeError):
        async with core.work() as work:
            work.signal("c1", NewMessage(1))
            raise RuntimeError("the change is not stored")
    async with core.work() as work:
        work.signal("c2", NewMessage(1))
    await wait_until(lambda: peer.signals, what="the peer to hear the committed unit of work")
    assert peer.signals == [("c2", NewMessage(1))]  # the one before it was never sent


async def test_signals_outside_a_unit_of_work_go_at_once_and_an_instance_skips_its_own(
    two: tuple[Database, Peer],
) -> None:
    here, peer = two
    mine = Notifier(here)
    heard_here: list[tuple[str, Signal]] = []
    await mine.listen(lambda cid, s: heard_here.append((cid, s)), lambda: None)
    try:
        core = Core(here, {}, frozenset(), LiveHub(), announce=mine.announce)
        typing = Typing(Participant(Role.AGENT, "Grace"))
        await core.publish([("c1", typing)], wake=False)
        await wait_until(lambda: peer.signals, what="the typing hint")
        await Notifier(here).announce([], wake=True)  # ``sitechat forget``: wake the others
        await wait_until(lambda: peer.wakes, what="the wake")
        assert (peer.signals, peer.wakes) == ([("c1", typing)], 1)
        assert heard_here == []
    finally:
        await mine.stop()

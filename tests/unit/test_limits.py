"""``bridge/store/limits.py``: the shared sliding window and the socket places, on SQLite and PostgreSQL
(the property: SQLite in a file).

The window's arithmetic is the in-process ``SlidingWindow``'s (the reference): the same uses are
allowed, and a refused one gets the same ``Retry-After``. Two instances on one PostgreSQL counting
one key: at the end; through running bridges: ``tests/security/test_limits_across_instances.py``.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, insert, select
from sqlalchemy.exc import OperationalError

from bridge.store.database import Database
from bridge.store.instances import Heartbeat
from bridge.store.limits import MAX_WINDOW, SharedLimits, purge_hits, stored_key
from bridge.store.tables import open_socket, rate_hit
from tests.harness import wait_for_a_lock_wait
from tests.unit import PROPERTY
from widget_server.ratelimit import SlidingWindow

BASE = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return BASE + timedelta(seconds=seconds)


@pytest_asyncio.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
def limits(db: Database) -> SharedLimits:
    return SharedLimits(db)


async def count(db: Database, table: object = rate_hit) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


# 3 uses per 60 s: (seconds from the start, seconds to wait or None when allowed)
THREE_PER_MINUTE: list[tuple[float, float | None]] = [
    (0, None),
    (10, None),
    (20, None),
    (30, 30.0),  # full: the first use (at 0) leaves at 60
    (59.5, 1.0),  # half a second to go is still "1 s" (Retry-After is whole seconds, at least 1)
    (60, None),  # a use exactly one window old no longer counts; the refused ones never did
    (61, 9.0),  # now 10, 20 and 60 count: 10 leaves at 70
    (70, None),
    (70.2, 10.0),  # 20 leaves at 80: 9.8 s, rounded up
    (500, None),  # everything has left
    (500, None),
    (500, None),
    (500, 60.0),  # three at this very moment: a whole window to wait
]


async def test_the_window_allows_the_limit_and_says_when_a_place_frees_up(limits: SharedLimits) -> None:
    reference = SlidingWindow(3, 60, clock=lambda: now)
    for now, expected in THREE_PER_MINUTE:
        wait = await limits.hit("messages", "conv-1", 3, 60, at(now))
        assert wait == expected, (now, wait)
        assert reference.hit("conv-1") == expected, ("the in-process window disagrees", now)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One database for every example of the property (each uses its own key)."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('window') / 'limits.db'}"

    async def migrate() -> None:
        db = Database(url)
        await db.migrate()
        await db.close()

    asyncio.run(migrate())
    return url


@PROPERTY
@given(
    limit=st.integers(1, 5),
    window=st.integers(1, 120),
    # milliseconds between uses: many at once, some within the window, some after it
    gaps=st.lists(st.sampled_from([0, 1, 250, 999, 1000, 5000, 30_000, 61_000, 200_000]), min_size=1, max_size=25),
)
def test_the_shared_window_agrees_with_the_in_process_one(
    migrated: str, limit: int, window: int, gaps: list[int]
) -> None:
    key = uuid.uuid4().hex

    async def scenario() -> tuple[list[float | None], list[float | None]]:
        db = Database(migrated)
        try:
            shared, now_ms = SharedLimits(db), 0
            # the reference counts in whole milliseconds, so its arithmetic is exact (floats of seconds are not)
            reference = SlidingWindow(limit, window * 1000, clock=lambda: now_ms)
            got, expected = [], []
            for gap in gaps:
                now_ms += gap
                got.append(await shared.hit("b", key, limit, window, at(now_ms / 1000)))
                wait_ms = reference.hit(key)
                expected.append(None if wait_ms is None else float(math.ceil(wait_ms / 1000)))
            return got, expected
        finally:
            await db.close()

    got, expected = asyncio.run(scenario())
    assert got == expected


async def test_keys_and_buckets_count_apart(limits: SharedLimits) -> None:
    assert await limits.hit("conversations", "203.0.113.5", 1, 3600, at(0)) is None
    assert await limits.hit("conversations", "203.0.113.5", 1, 3600, at(1)) == 3599
    assert await limits.hit("conversations", "203.0.113.6", 1, 3600, at(1)) is None
    assert await limits.hit("messages", "203.0.113.5", 1, 60, at(1)) is None


async def test_a_lowered_limit_waits_until_enough_uses_have_left(limits: SharedLimits) -> None:
    for i in range(5):  # counted under a limit of 5 (an instance with older settings, say)
        assert await limits.hit("messages", "c", 5, 60, at(i)) is None
    # with a limit of 2, a place frees up when the second newest (at 3) leaves, not the oldest
    assert await limits.hit("messages", "c", 2, 60, at(10)) == 53


async def test_a_keys_expired_uses_go_when_it_is_used_and_old_ones_with_the_purge(
    db: Database, limits: SharedLimits
) -> None:
    for i in range(3):
        await limits.hit("messages", "a", 10, 60, at(i))
        await limits.hit("messages", "b", 10, 60, at(i))
    assert await count(db) == 6
    await limits.hit("messages", "a", 10, 60, at(100))  # a's three have left its window: removed
    assert await count(db) == 4
    async with db.write() as conn:  # b is not used again: its uses wait for the purge
        await purge_hits(conn, at(2) + MAX_WINDOW)
    assert await count(db) == 1  # the one use younger than the longest window stays


@pytest.mark.parametrize(
    ("key", "stored_as_given"),
    [
        ("203.0.113.5", True),
        ("2001:db8::1", True),
        ("fe80::1%eth0", True),
        ("unknown", True),
        ("Xq3_-9aZ" * 5, True),  # a conversation id
        ("a" * 100, True),
        ("a" * 101, False),  # too long for the column
        ("203.0.113.5 ", False),  # anything but an address or an id (an X-Forwarded-For hop can hold anything)
        ("<script>", False),
        ("nul\x00", False),
        ("surrogate\udcff", False),
        ("#" + "0" * 32, False),  # cannot pose as another key's digest
    ],
)
def test_keys_are_stored_as_given_or_as_a_digest_that_fits(key: str, stored_as_given: bool) -> None:
    stored = stored_key(key)
    assert (stored == key) is stored_as_given
    assert len(stored) <= 100 and stored.isascii() and stored.isprintable()
    if not stored_as_given:
        assert stored.startswith("#") and stored != stored_key(key + "x")


async def test_an_odd_key_is_limited_like_any_other(limits: SharedLimits) -> None:
    long = "198.51.100.7, " * 100
    assert await limits.hit("conversations", long, 1, 3600, at(0)) is None
    assert await limits.hit("conversations", long, 1, 3600, at(1)) == 3599
    assert await limits.hit("conversations", long + "x", 1, 3600, at(1)) is None


@pytest.mark.parametrize(("limit", "window"), [(0, 60), (1, 0), (1, 3601)])
async def test_a_limit_without_a_place_or_beyond_the_purge_is_a_mistake(
    limits: SharedLimits, limit: int, window: float
) -> None:
    with pytest.raises(ValueError, match="limit"):
        await limits.hit("b", "k", limit, window, at(0))


# -- socket places ----------------------------------------------------------------------------------


async def test_socket_places_are_per_address_and_come_back_when_closed(limits: SharedLimits) -> None:
    first = await limits.open_socket("203.0.113.5", 2, at(0))
    second = await limits.open_socket("203.0.113.5", 2, at(0))
    assert first is not None and second is not None and first != second
    assert await limits.open_socket("203.0.113.5", 2, at(0)) is None
    assert await limits.open_socket("203.0.113.6", 2, at(0)) is not None
    await limits.close_socket(first)
    assert await limits.open_socket("203.0.113.5", 2, at(1)) is not None
    assert await limits.open_socket("203.0.113.5", 2, at(1)) is None


async def test_racing_sockets_cannot_take_more_places_than_there_are(db: Database, limits: SharedLimits) -> None:
    places = await asyncio.gather(*(limits.open_socket("203.0.113.5", 3, at(0)) for _ in range(8)))
    assert len([p for p in places if p is not None]) == 3
    assert await count(db, open_socket) == 3


@asynccontextmanager
async def unavailable() -> AsyncIterator[None]:
    raise OperationalError("BEGIN", {}, Exception("the database is away"))
    yield  # pragma: no cover


async def test_a_place_closed_while_the_database_is_away_is_given_back_later(
    db: Database, limits: SharedLimits, monkeypatch: pytest.MonkeyPatch
) -> None:
    place = await limits.open_socket("203.0.113.5", 1, at(0))
    assert place is not None
    with monkeypatch.context() as m:
        m.setattr(db, "write", unavailable)
        await limits.close_socket(place)  # no exception: the socket's handler is ending anyway
    assert await count(db, open_socket) == 1  # still taken …
    # … until this instance next opens (or closes) a socket, from any address
    assert await limits.open_socket("203.0.113.9", 1, at(1)) is not None
    assert await limits.open_socket("203.0.113.5", 1, at(1)) is not None


async def test_the_heartbeat_frees_places_left_over_and_its_own_when_it_stops(
    db: Database, limits: SharedLimits
) -> None:
    mine = await limits.open_socket("203.0.113.5", 5, at(0))
    async with db.write() as conn:  # an earlier run on this file, killed with its sockets open
        await conn.execute(insert(open_socket).values(instance_id="killed", address="203.0.113.5", opened_at=at(0)))
    heartbeat = Heartbeat(db, lambda: datetime.now(UTC), lambda: True)
    await heartbeat.beat()
    async with db.read() as conn:
        assert (await conn.execute(select(open_socket.c.id))).scalars().all() == [mine]
    task = asyncio.create_task(heartbeat.run())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await count(db, open_socket) == 0


def test_a_hit_counted_a_moment_ahead_by_another_instance_never_asks_for_more_than_the_window() -> None:
    from datetime import UTC, datetime, timedelta

    from bridge.store.limits import seconds_to_wait

    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert seconds_to_wait(now + timedelta(milliseconds=300), timedelta(hours=1), now) == 3600


# -- two instances on one PostgreSQL ---------------------------------------------------------------------


@pytest_asyncio.fixture
async def two_instances(postgres_url: str) -> AsyncIterator[tuple[Database, Database]]:
    a, b = Database(postgres_url), Database(postgres_url)
    await a.migrate()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_a_use_waiting_for_the_key_counts_the_one_committed_meanwhile(
    two_instances: tuple[Database, Database],
) -> None:
    """B's use waits while A's transaction holds the key, and then sees A's use: one place, one use. (A
    count in the statement that waited for the lock would not: its snapshot is older than A's commit.)"""
    a, b = two_instances
    async with a.write() as conn:  # A's message transaction: counted, not committed yet
        assert await SharedLimits(a).hit("messages", "conv-1", 1, 60, at(0), conn) is None
        b_hit = asyncio.create_task(SharedLimits(b).hit("messages", "conv-1", 1, 60, at(1)))
        await wait_for_a_lock_wait(a.url, "B's use waiting for A's transaction")
        assert not b_hit.done(), "B must wait for A's transaction"
    assert await b_hit == 59
    assert await count(a) == 1


async def test_a_use_rolled_back_leaves_its_place(two_instances: tuple[Database, Database]) -> None:
    a, b = two_instances
    with pytest.raises(RuntimeError):
        async with a.write() as conn:  # the message is refused after it was counted: not stored
            assert await SharedLimits(a).hit("messages", "conv-1", 1, 60, at(0), conn) is None
            raise RuntimeError("the message is not stored")
    assert await SharedLimits(b).hit("messages", "conv-1", 1, 60, at(1)) is None


async def test_two_instances_hammering_one_key_admit_exactly_the_limit(
    two_instances: tuple[Database, Database],
) -> None:
    a, b = two_instances
    shared = [SharedLimits(a), SharedLimits(b)]

    async def use(i: int) -> float | None:
        db = (a, b)[i % 2]
        async with db.write() as conn:  # each in a transaction of its own that outlives the count a little
            wait = await shared[i % 2].hit("messages", "conv-1", 5, 60, at(i / 1000), conn)
            await asyncio.sleep(0.01)
        return wait

    waits = await asyncio.gather(*(use(i) for i in range(40)))
    assert len([w for w in waits if w is None]) == 5
    assert all(w == 60 for w in waits if w is not None)
    assert await count(a) == 5

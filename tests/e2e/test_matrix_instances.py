"""Several instances, one Matrix session: only the instance holding the Matrix lock syncs, sends and
opens the encryption store; when it goes (stopped, or cut off from the database), another takes over
the same device and store. The lock itself (``StateStore.exclusive``) runs on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text

from adapters.matrix.endpoint import MatrixEndpoint
from bridge.conversations import utcnow
from bridge.endpoint import Outgoing
from bridge.errors import RetryLater
from bridge.model import Conversation, ConversationId, Status, Visitor
from bridge.outbound import OpenThread
from bridge.store.database import Database
from bridge.store.state import KeyValueState, exclusive_key
from sitechat.demo.local_homeserver import LocalSynapse
from tests.conftest import fresh_postgres
from tests.fakes.synapse import new_bot
from tests.harness import wait_until

pytestmark = [pytest.mark.asyncio(loop_scope="session")]


class NoInbox:
    async def handle(self, event: object) -> bool:
        return False

    async def typing(self, endpoint: str, thread: object, author: object) -> None:
        return None


async def _database(url: str) -> Database:
    db = Database(url)
    await db.migrate()
    return db


@pytest_asyncio.fixture(loop_scope="session")
async def pg_url() -> AsyncIterator[str]:
    async with fresh_postgres() as url:
        yield url


async def _terminate_lock(db: Database, prefix: str, name: str) -> int:
    """``pg_terminate_backend`` on the connection holding the lock (a cut connection, as in a failover)."""
    key = exclusive_key(prefix, name)
    async with db.read() as conn:
        pids = (
            await conn.execute(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                    "AND classid::bigint = :high AND objid::bigint = :low"
                ),
                {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
            )
        ).all()
        for (pid,) in pids:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await conn.commit()
    return len(pids)


async def test_exclusive_on_sqlite_is_always_held(tmp_path: Path) -> None:
    db = await _database(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    try:
        async with KeyValueState(db, "matrix", utcnow).exclusive("session") as lease:
            assert lease is not None and lease.takeover_seconds == 0 and await lease.still_held()
    finally:
        await db.close()


async def test_exclusive_on_postgresql_is_one_instance_at_a_time(pg_url: str) -> None:
    first, second = await _database(pg_url), await _database(pg_url)
    try:
        a, b = KeyValueState(first, "matrix", utcnow), KeyValueState(second, "matrix", utcnow)
        async with a.exclusive("session") as held:
            assert held is not None and held.takeover_seconds > 0 and await held.still_held()
            async with b.exclusive("session") as refused:
                assert refused is None
            async with (
                b.exclusive("another") as other,
                KeyValueState(second, "slack", utcnow).exclusive("session") as s,
            ):
                assert other is not None and s is not None  # names and endpoints are apart
        async with b.exclusive("session") as taken:
            assert taken is not None  # released at the end of the block
            assert await _terminate_lock(first, "matrix", "session") == 1
            assert not await taken.still_held()  # its connection is gone, and the lock with it
        async with a.exclusive("session") as again:
            assert again is not None
    finally:
        await first.close()
        await second.close()


def _endpoint(hs: LocalSynapse, bot_id: str, password: str, room_id: str, db: Database, store: Path) -> MatrixEndpoint:
    return MatrixEndpoint(
        homeserver=hs.base_url,
        user_id=bot_id,
        password=password,
        access_token=None,
        device_id=None,
        staff=[],
        rooms=[room_id],
        state=KeyValueState(db, "matrix", utcnow),
        store_path=str(store),
        poll_seconds=1.0,
    )


def _root_delivery(room_id: str) -> Outgoing:
    now = utcnow()
    conversation = Conversation(ConversationId("c1"), "acme", None, Status.OPEN, Visitor("Ann"), now, now)
    return Outgoing(1, OpenThread(), conversation, "Acme", None, room_id, None)


@pytest.mark.synapse
async def test_only_the_lock_holder_runs_the_matrix_session(synapse: LocalSynapse, pg_url: str, tmp_path: Path) -> None:
    bot = await new_bot(synapse)
    room_id = await synapse.create_room(bot.access_token, name="Support", encrypted=True)
    store = tmp_path / "shared-store"
    first_db, second_db = await _database(pg_url), await _database(pg_url)
    first = _endpoint(synapse, bot.user_id, bot.password, room_id, first_db, store)
    second = _endpoint(synapse, bot.user_id, bot.password, room_id, second_db, store)
    try:
        await first.start(NoInbox())
        assert first.holder.holding and first.session.can_encrypt
        device = first.device_id
        await second.start(NoInbox())
        assert not second.holder.holding and second.client is None  # standing by: no session, no store open
        with pytest.raises(RetryLater, match="another instance runs the Matrix session"):
            await second.deliver([_root_delivery(room_id)])

        # the holder is cut off from the database: it stops at once, and the other one takes over
        assert await _terminate_lock(second_db, "matrix", "session") == 1
        await wait_until(lambda: not first.holder.holding and first.client is None, 10, "the cut-off holder to stop")
        await wait_until(lambda: second.holder.holding and second.session.logged_in, 30, "the other to take over")
        assert second.device_id == device and second.session.can_encrypt  # the same device, the same store
        assert not first.holder.holding

        # a clean stop (a rolling restart) hands over without the wait a cut connection needs
        await second.stop()
        assert await KeyValueState(first_db, "matrix", utcnow).get("session_holder") == "released"
        await wait_until(lambda: first.holder.holding and first.session.logged_in, 15, "the first to take it back")
        assert first.device_id == device
    finally:
        await first.stop()
        await second.stop()
        await first_db.close()
        await second_db.close()

"""Erasure (CONTRACT §9): ``sitechat forget --email`` and ``SITECHAT_RETENTION_DAYS`` delete conversations
from every table and remove the bridge's own copies in team chat — Slack posts (``chat.delete``, the fake
Web API) and Matrix events (redactions, a real Synapse) — through the outbox, while everyone else's
conversations stay whole."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import nio
import pytest
import pytest_asyncio
from sqlalchemy import select

from adapters.matrix.format import thread_relation
from bridge.store.database import Database
from bridge.store.tables import conversation, metadata
from sitechat.demo.local_homeserver import LocalSynapse, RegisteredUser
from tests.fakes.slack_api import FakeSlack
from tests.fakes.synapse import new_bot, new_user
from tests.harness import BridgeFactory, SlackAgent, Visitor, bridge_factory, run_sitechat, wait_until
from tests.images import png

pytestmark = [pytest.mark.synapse, pytest.mark.asyncio(loop_scope="session")]

Event = dict[str, Any]
ANN, BOB = "ann@example.com", "bob@example.com"
LONG = "x" * 2990  # three of these make a transcript longer than one Slack post (and one Matrix event)


@pytest_asyncio.fixture(loop_scope="session")
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as slack:
        yield slack


@pytest_asyncio.fixture(loop_scope="session")
async def make_bridge(sqlite_url: str) -> AsyncIterator[BridgeFactory]:
    async with bridge_factory(sqlite_url) as make:
        yield make


class Room:
    """The Matrix room as a staff member sees it (their own nio client)."""

    def __init__(self, hs: LocalSynapse, bot: RegisteredUser, staff: RegisteredUser, room_id: str) -> None:
        self.hs, self.bot, self.room_id = hs, bot, room_id
        self.client = nio.AsyncClient(hs.base_url, staff.user_id)
        self.client.restore_login(staff.user_id, staff.device_id, staff.access_token)
        self.events: list[Event] = []

    async def sync(self) -> None:
        response = await self.client.sync(timeout=300, sync_filter={"room": {"timeline": {"limit": 500}}})
        assert isinstance(response, nio.SyncResponse), response
        room = response.rooms.join.get(self.room_id)
        if room is not None:
            self.events.extend(e.source for e in room.timeline.events)

    def bot_events_of(self, email: str) -> list[Event]:
        """The bot's events in the threads whose root names ``email`` (roots, replies, root edits)."""
        ours = [e for e in self.events if e["sender"] == self.bot.user_id and e["type"] == "m.room.message"]
        roots = {
            e["event_id"] for e in ours if "m.relates_to" not in e["content"] and email in e["content"]["body"].lower()
        }
        related = [e for e in ours if (e["content"].get("m.relates_to") or {}).get("event_id") in roots]
        return [e for e in ours if e["event_id"] in roots] + related

    async def redacted(self, event_id: str) -> bool:
        response = await self.client.room_get_event(self.room_id, event_id)
        assert isinstance(response, nio.RoomGetEventResponse), response
        source = response.event.source
        return not source.get("content") or "redacted_because" in source.get("unsigned", {})

    async def reply(self, root: str, text: str) -> None:
        content = {"msgtype": "m.text", "body": text, "m.mentions": {}, "m.relates_to": thread_relation(root, root)}
        response = await self.client.room_send(self.room_id, "m.room.message", content, tx_id=uuid.uuid4().hex)
        assert isinstance(response, nio.RoomSendResponse), response


@pytest_asyncio.fixture(loop_scope="session")
async def room(synapse: LocalSynapse) -> AsyncIterator[Room]:
    bot = await new_bot(synapse)
    staff = await new_user(synapse, "staff", displayname="Sam Staff")
    room_id = await synapse.create_room(bot.access_token, name="Website chat", invite=[staff.user_id])
    await synapse.join(staff.access_token, room_id)
    found = Room(synapse, bot, staff, room_id)
    await found.sync()
    yield found
    await found.client.close()


def _mirrored(room: Room, **more: Any) -> dict[str, Any]:
    """Overrides for a site mirrored into the fake Slack's C0SUPPORT and the Matrix room."""
    return {
        "matrix_homeserver": room.hs.base_url,
        "matrix_user_id": room.bot.user_id,
        "matrix_password": room.bot.password,
        "slack_posts_per_second": 100,
        "site": {"matrix_room": room.room_id, "topics": {}},
        **more,
    }


def _slack_threads_of(slack: FakeSlack, email: str) -> list[str]:
    return [
        m["ts"]
        for m in slack.messages("C0SUPPORT")
        if m.get("thread_ts") in (None, m["ts"]) and email in json.dumps(m.get("blocks") or m.get("text")).lower()
    ]


def _bot_posts(slack: FakeSlack, roots: Iterable[str]) -> list[dict[str, Any]]:
    wanted = set(roots)
    return [
        m
        for m in slack.messages("C0SUPPORT")
        if m.get("bot_id") and (m["ts"] in wanted or m.get("thread_ts") in wanted)
    ]


async def _every_row(db: Database) -> list[str]:
    """Every row of every table, as text."""
    rows: list[str] = []
    async with db.read() as conn:
        for table in metadata.sorted_tables:
            rows.extend(f"{table.name}: {tuple(r)!r}" for r in await conn.execute(select(table)))
    return rows


async def _chat(visitor: Visitor, slack: FakeSlack, agent: SlackAgent, room: Room, name: str, email: str) -> str:
    """A conversation answered from both sides; its Slack root's ts."""
    await visitor.start(name=name, email=email)
    root_ts = (await wait_until(lambda: _slack_threads_of(slack, email), what=f"{name}'s Slack root"))[0]
    await visitor.say(f"{name}'s secret order 4711")
    await agent.reply("C0SUPPORT", root_ts, f"On its way, {name}!")

    async def matrix_root() -> Any:
        await room.sync()
        return [e for e in room.bot_events_of(email) if "m.relates_to" not in e["content"]]

    matrix_root_event = (await wait_until(matrix_root, what=f"{name}'s Matrix root"))[0]
    await room.reply(matrix_root_event["event_id"], f"Matrix staff greets {name}")
    await wait_until(lambda: _agent_lines(visitor, 2), what="both agents' replies")
    return str(root_ts)


async def _all_redacted(room: Room, events: list[Event]) -> None:
    async def redacted() -> bool:
        return all([await room.redacted(e["event_id"]) for e in events])

    await wait_until(redacted, timeout=30, what="the bot's events redacted")


async def _agent_lines(visitor: Visitor, n: int) -> bool:
    agents = [m for m in (await visitor.messages())["messages"] if m["author"]["role"] == "agent"]
    return len(agents) >= n


async def test_forget_erases_one_person_everywhere_and_leaves_the_others_whole(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, room: Room, tmp_path: Path, sqlite_url: str
) -> None:
    bridge = await make_bridge(fake_slack, **_mirrored(room))
    ann, bob, agent = Visitor(bridge.url), Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    try:
        await _chat(ann, fake_slack, agent, room, "Ann", ANN)
        for _ in range(3):  # a transcript in several posts (Slack) and events (Matrix)
            assert (await ann.say(LONG))[0] == 201
        # a file too: kept by the bridge, shared into Slack, uploaded to Matrix
        await ann.send_file(png(), "ann-passport.png", "my passport")
        path = f"/api/v1/conversations/{ann.conversation_id}"
        assert (await ann.request("POST", f"{path}/close"))[0] == 200
        assert (await ann.request("POST", f"{path}/rating", {"score": 5, "comment": "Ann is happy"}))[0] == 200
        offline = {"name": "Ann", "email": ANN.upper(), "text": "Ann left a note offline"}
        assert (await ann.request("POST", "/api/v1/sites/acme/offline-messages", offline))[0] == 202
        await _chat(bob, fake_slack, agent, room, "Bob", BOB)
        await bridge.wait_idle(timeout=30)
        await room.sync()

        ann_roots = _slack_threads_of(fake_slack, ANN)
        ann_posts = _bot_posts(fake_slack, ann_roots)
        assert len(ann_roots) == 2  # the chat and the offline message
        transcript_parts = [m for m in ann_posts if m.get("text", "").startswith(("Transcript", "x" * 50))]
        assert len(ann_posts) >= 10 and len(transcript_parts) >= 3, [m.get("text", "")[:40] for m in ann_posts]
        ann_events = room.bot_events_of(ANN)
        assert len(ann_events) >= 9
        bob_slack_before = fake_slack.thread("C0SUPPORT", _slack_threads_of(fake_slack, BOB)[0])
        bob_events = room.bot_events_of(BOB)

        env = tmp_path / "forget.env"
        env.write_text(f"SITECHAT_DATABASE_URL={sqlite_url}\n")
        env.chmod(0o600)
        code, out = await run_sitechat("forget", "--email", " Ann@Example.com ", "--env-file", str(env), cwd=tmp_path)
        assert code == 0, out
        assert "forgot 2 conversation(s)" in out, out

        # the copies go, through the outbox of the running service
        await wait_until(lambda: not _bot_posts(fake_slack, ann_roots), timeout=30, what="Ann's Slack posts deleted")
        await _all_redacted(room, ann_events)
        await bridge.wait_idle(timeout=30)
        deleted = {m["ts"] for m in fake_slack.deleted}
        assert {m["ts"] for m in ann_posts} <= deleted
        # the Slack agent's own reply is theirs, not the bridge's: only a person can delete it
        left = [m for ts in ann_roots for m in fake_slack.thread("C0SUPPORT", ts)]
        assert all(not m.get("bot_id") for m in left), left

        # no trace of Ann, her messages or her agents' answers in any table
        assert bridge.runtime is not None
        rows = "\n".join(await _every_row(bridge.runtime.db)).lower()
        for trace in (ANN, "ann's secret", "on its way, ann", "greets ann", "ann is happy", "left a note", LONG):
            assert trace.lower() not in rows, trace
        assert "ann-passport" not in rows and "attachment_chunk:" not in rows, "her file's bytes went too"
        assert not [f for f in fake_slack.files if f.name == "ann-passport.png" and not f.deleted], "and Slack's copy"
        assert (await ann.request("GET", f"{path}/messages?after=0"))[0] == 403

        # Bob's conversation is whole, everywhere, and still works
        assert fake_slack.thread("C0SUPPORT", _slack_threads_of(fake_slack, BOB)[0]) == bob_slack_before
        for event in bob_events:
            assert not await room.redacted(event["event_id"])
        assert "bob's secret order 4711" in rows and BOB in rows
        assert (await bob.say("Bob is still here"))[0] == 201
        bob_root = _slack_threads_of(fake_slack, BOB)[0]
        await wait_until(
            lambda: any(m.get("text") == "Bob is still here" for m in fake_slack.thread("C0SUPPORT", bob_root)),
            what="Bob's next line",
        )

        # forgetting again finds nothing
        code, out = await run_sitechat("forget", "--email", ANN, "--env-file", str(env), cwd=tmp_path)
        assert code == 0 and "forgot 0 conversation(s)" in out, out
    finally:
        for closing in (ann, bob, agent):
            await closing.close()


async def test_retention_erases_closed_conversations_and_waits_out_a_slack_outage(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, room: Room
) -> None:
    """Closed conversations older than SITECHAT_RETENTION_DAYS go, with their copies; open ones stay. A
    Slack that fails ``chat.delete`` meanwhile only delays the removal."""
    seconds = 4.0
    bridge = await make_bridge(fake_slack, **_mirrored(room, retention_days=seconds / 86400))
    ann, bob, agent = Visitor(bridge.url), Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    try:
        await _chat(ann, fake_slack, agent, room, "Ann", ANN)
        await _chat(bob, fake_slack, agent, room, "Bob", BOB)
        assert (await ann.request("POST", f"/api/v1/conversations/{ann.conversation_id}/close"))[0] == 200
        await bridge.wait_idle(timeout=30)
        await room.sync()
        ann_roots = _slack_threads_of(fake_slack, ANN)
        ann_posts = _bot_posts(fake_slack, ann_roots)
        ann_events = room.bot_events_of(ANN)
        bob_before = fake_slack.thread("C0SUPPORT", _slack_threads_of(fake_slack, BOB)[0])
        fake_slack.fail_for("chat.delete", seconds=seconds + 3, status=500)

        assert bridge.runtime is not None
        db = bridge.runtime.db

        async def erased() -> bool:
            async with db.read() as conn:
                ids = set((await conn.execute(select(conversation.c.id))).scalars())
            return ann.conversation_id not in ids

        await wait_until(erased, timeout=seconds * 3, what="retention to erase Ann's closed conversation")
        assert ann_posts and _bot_posts(fake_slack, ann_roots), "deleted during the outage?"
        await asyncio.sleep(1.0)
        assert _bot_posts(fake_slack, ann_roots), "deleted during the outage?"
        await wait_until(lambda: not _bot_posts(fake_slack, ann_roots), timeout=30, what="the posts deleted after it")
        await _all_redacted(room, ann_events)

        # Bob's conversation is open: it stays, however old
        await asyncio.sleep(seconds)
        assert fake_slack.thread("C0SUPPORT", _slack_threads_of(fake_slack, BOB)[0]) == bob_before
        async with db.read() as conn:
            assert bob.conversation_id in set((await conn.execute(select(conversation.c.id))).scalars())
        rows = "\n".join(await _every_row(db)).lower()
        assert ANN not in rows and "ann's secret" not in rows
    finally:
        for closing in (ann, bob, agent):
            await closing.close()


async def test_retention_on_two_instances_erases_each_conversation_once(database_url: str) -> None:
    """Two instances' timers purge at the same time (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: one
    writer): every due conversation is erased once and each of its copies queued for removal once."""
    from bridge.conversations import Conversations
    from bridge.live import LiveHub
    from bridge.model import Visitor as Who
    from bridge.retention import Retention
    from bridge.store import outbox
    from bridge.store.tables import delivery
    from config.settings import SiteConfig

    db = Database(database_url)
    await db.migrate()
    try:
        site = {"name": "Acme", "origins": ["https://acme.example"], "slack_channel": "C0SUPPORT"}
        sites = {"acme": SiteConfig.model_validate(site)}
        core = Conversations(db, sites, ["slack"], LiveHub())
        ids = []
        for n in range(10):
            visitor = Who(f"V{n}", f"v{n}@example.com")
            started = await core.start(
                "acme", visitor=visitor, topic=None, page=None, locale=None, timezone=None, client_address=None
            )
            ids.append(started.conversation.id)
            await core.post_visitor_message(started.conversation.id, "m1", f"line of V{n}")
        async with db.write() as conn:  # as if Slack took them: the root and the line, each its post
            rows = (await conn.execute(select(delivery.c.id, delivery.c.kind, delivery.c.conversation_id))).all()
            for r in rows:
                await outbox.mark_done(conn, r.id, core.core.clock(), f"C0SUPPORT:{r.id}.0001")
                if r.kind == "open_thread":
                    await core_root(conn, r.conversation_id, f"C0SUPPORT:{r.id}.0001", core.core.clock())
        posted: dict[str, set[str]] = {r.conversation_id: set() for r in rows}
        for r in rows:
            posted[r.conversation_id].add(f"C0SUPPORT:{r.id}.0001")
        for cid in ids[:7]:
            await core.close(cid)
        first, second = Retention(db, 1e-9, batch=3), Retention(db, 1e-9, batch=3)
        erased = await asyncio.gather(first.purge(), second.purge())
        assert sum(erased) == 7
        async with db.read() as conn:
            left = set((await conn.execute(select(conversation.c.id))).scalars())
            erasures = (await conn.execute(select(delivery.c.payload).where(delivery.c.kind == "erase"))).scalars()
            copies = [p.get("copy") or p["thread"] for p in erasures]
        assert left == set(ids[7:])
        # every post of the erased conversations (the root, the line…; not what was never sent), each once
        assert len(copies) == len(set(copies))
        assert set(copies) == {post for cid in ids[:7] for post in posted[cid]}

        # forget finds a person by the address they gave, or one a transcript was mailed to
        from bridge.retention import forget

        async with db.write() as conn:
            await outbox.enqueue(conn, ids[9], "email", "transcript", core.core.clock(), payload={"to": "Mo@Ex.org"})
        assert await forget(db, "V8@example.com") == 1
        assert await forget(db, "mo@ex.org") == 1
        assert await forget(db, "v_@example.com") == 0  # a LIKE wildcard is no wildcard
        async with db.read() as conn:
            assert set((await conn.execute(select(conversation.c.id))).scalars()) == {ids[7]}
    finally:
        await db.close()


async def core_root(conn: Any, cid: str, ref: str, now: Any) -> None:
    from bridge.store import conversations as q

    await q.set_thread_ref(conn, cid, "slack", ref)
    await q.remember_root(conn, "slack", ref, cid, now)


async def test_each_copy_is_erased_in_the_thread_it_is_in_after_a_transfer(sqlite_url: str) -> None:
    """A transfer moves a conversation to a new room: its earlier posts stay in the old one, and Matrix
    needs the room to redact. Every post, each part of a long one, and both roots are found where they are."""
    from bridge.conversations import Conversations
    from bridge.live import LiveHub
    from bridge.model import Participant, Role
    from bridge.model import Visitor as Who
    from bridge.store import conversations as q
    from bridge.store import erasure, outbox
    from bridge.store.tables import delivery
    from bridge.team_commands import transfer
    from config.settings import SiteConfig

    site = {
        "name": "Acme",
        "origins": ["https://acme.example"],
        "matrix_room": "!a:hs",
        "topics": {"sales": {"label": "Sales", "matrix_room": "!b:hs"}},
    }
    db = Database(sqlite_url)
    await db.migrate()
    try:
        core = Conversations(db, {"acme": SiteConfig.model_validate(site)}, ["matrix"], LiveHub())
        started = await core.start(
            "acme", visitor=Who("Ann", ANN), topic=None, page=None, locale=None, timezone=None, client_address=None
        )
        cid = started.conversation.id
        await core.post_visitor_message(cid, "m1", "hello")

        async def send_pending(events: dict[str, tuple[str, ...]]) -> None:
            """The Matrix side took every pending delivery: kind → its events, in turn."""
            async with db.write() as conn:
                rows = await conn.execute(select(delivery).where(delivery.c.done.is_(False)).order_by(delivery.c.id))
                for r in rows.all():
                    first, *more = events[r.kind] if r.kind in events else (f"${r.id}",)
                    await outbox.mark_done(conn, r.id, core.core.clock(), first, more)
                    if r.kind == "open_thread":
                        room = (await q.thread_links(conn, cid))["matrix"][0]
                        ref = f"{room}|{first}"
                        await q.set_thread_ref(conn, cid, "matrix", ref)
                        await q.remember_root(conn, "matrix", ref, cid, core.core.clock())

        await send_pending({"open_thread": ("$root1",), "message": ("$line1",)})
        async with core.core.work() as work:
            conv = await q.get_conversation(work.conn, cid)
            assert conv is not None
            await transfer(core.core, work, conv, "sales", Participant(Role.AGENT, "Sam"), "matrix")
        await send_pending({"open_thread": ("$root2",), "notice": ("$bye1",), "transcript": ("$t1", "$t2")})

        async with db.read() as conn:
            copies = await erasure.copies_of(conn, cid)
        found = {(c.remote_id, c.thread, c.destination) for c in copies}
        assert found == {
            ("$line1", "!a:hs|$root1", "!a:hs"),
            ("$bye1", "!a:hs|$root1", "!a:hs"),
            ("$t1", "!b:hs|$root2", "!b:hs"),
            ("$t2", "!b:hs|$root2", "!b:hs"),
            (None, "!a:hs|$root1", "!a:hs"),
            (None, "!b:hs|$root2", "!b:hs"),
        }
        assert [c.remote_id for c in copies][-2:] == [None, None]  # the roots last
    finally:
        await db.close()

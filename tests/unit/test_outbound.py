"""``bridge/outbound.py``: every outbound kind survives the outbox (``encode`` → row → ``decode``)."""

from __future__ import annotations

import dataclasses
import json
import typing
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.model import Attachment, ConversationId, Message, Participant, RemoteId, Role
from bridge.outbound import (
    ABOUT_A_MESSAGE,
    Deletion,
    Edit,
    Erase,
    FilePost,
    FollowUpMail,
    Invite,
    Line,
    Notice,
    OpenThread,
    Outbound,
    Reminder,
    RootState,
    Seen,
    Transcript,
    UndecodableDelivery,
    WebhookEvent,
    decode,
    encode,
)
from tests.unit import PROPERTY

KINDS: tuple[type[Outbound], ...] = typing.get_args(Outbound)

MESSAGE = Message(
    "m1", ConversationId("c1"), 3, Participant(Role.VISITOR, "Ada"), "Hello?", datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
)
COPY = RemoteId("C0123:1712.0001")


def through_the_outbox(what: Outbound, message: Message | None = MESSAGE, copy: RemoteId | None = None) -> Outbound:
    """What a delivery worker gets back: the row as stored (JSON payload), its message looked up by id."""
    row = encode(what)
    payload = json.loads(json.dumps(row.payload))  # the outbox column is JSON
    found = message if message is not None and row.message_id == message.id else None
    return decode(row.kind, payload, found, copy)


# a case name → (the kind, this endpoint's copy as the worker looks it up)
ROUND_TRIPS: dict[str, tuple[Outbound, RemoteId | None]] = {
    "open thread": (OpenThread(), None),
    "root state": (RootState(), None),
    "a line": (Line(MESSAGE), None),
    "a line, a copy on record is not part of it": (Line(MESSAGE), COPY),
    "a transcript for the thread": (Transcript("Transcript — Example\n(no messages)"), None),
    "a transcript by email": (Transcript("Transcript — Example", to="ada@example.org"), None),
    "an empty transcript": (Transcript(""), None),
    "a notice": (Notice("Rated 5/5"), None),
    "a notice with unicode and newlines": (Notice("Déjà vu —\n«ok» 👍"), None),
    "an edit of a copy": (Edit(MESSAGE, COPY), COPY),
    "an edit with no copy on this endpoint": (Edit(MESSAGE, None), None),
    "a deletion of a copy": (Deletion(MESSAGE, COPY), COPY),
    "a deletion with no copy on this endpoint": (Deletion(MESSAGE, None), None),
    "a webhook event with its export row": (
        WebhookEvent("conversation.closed", {"id": "c1", "agents": ["Alice"], "rating": None}, "d1"),
        None,
    ),
    "an erasure of a copy": (Erase(COPY), None),
    "an erasure of a thread's root": (Erase(None), None),
    "a reminder that mentions the channel's active members": (Reminder("Ann has been waiting 1 min", "here"), None),
    "a reminder that mentions a user group": (Reminder("Ann has been waiting 3 min", "S0123ABCD"), None),
    "an invitation of a Slack member": (Invite("<@U0BOB>", "Alice"), None),
    "an invitation by display name": (Invite("Bob Smith", "Alice"), None),
    "the visitor saw an agent's message": (Seen(MESSAGE, COPY), COPY),
    "seen, with no copy on this endpoint": (Seen(MESSAGE, None), None),
    "a follow-up mail with a reply address": (
        FollowUpMail("ada@example.org", "New reply", "Alice: Hi", "<p>Hi</p>", "c-abc.def@in.example"),
        None,
    ),
    "a follow-up mail without a reply address": (FollowUpMail("ada@example.org", "Neue Antwort", "Bob: Hallo"), None),
    "a report's picture for a channel": (
        FilePost(Attachment("f1", "sitechat-report-acme-2027-01-04.png", 123_456, "image/png"), "Acme — 7 days"),
        None,
    ),
}


@pytest.mark.parametrize(("what", "copy"), ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_round_trip(what: Outbound, copy: RemoteId | None) -> None:
    assert through_the_outbox(what, copy=copy) == what


@pytest.mark.parametrize(("what", "copy"), ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_a_message_kind_keeps_its_message_by_id_not_by_text(what: Outbound, copy: RemoteId | None) -> None:
    row = encode(what)
    if what.KIND in ABOUT_A_MESSAGE:
        assert (row.message_id, row.payload) == (MESSAGE.id, None)
    else:
        assert row.message_id is None


def test_a_deletion_removes_every_post_the_message_became() -> None:
    """The worker looks up the posts (a text and the files shared with it); the copy itself is not twice."""
    row = encode(Deletion(MESSAGE, COPY))
    more = [COPY, RemoteId("C1:1.2"), RemoteId("file:F0001")]
    assert decode(row.kind, row.payload, MESSAGE, COPY, more) == Deletion(MESSAGE, COPY, more=tuple(more[1:]))


def test_an_empty_address_is_no_address() -> None:
    """``to=""`` is stored as no address, so it comes back as a team-chat transcript."""
    assert through_the_outbox(Transcript("t", to="")) == Transcript("t", None)


def test_every_kind_has_a_round_trip_row() -> None:
    assert {type(what) for what, _ in ROUND_TRIPS.values()} == set(KINDS)


def test_the_union_and_the_decoder_know_the_same_kinds() -> None:
    """A kind added to ``Outbound`` without a ``decode`` case fails here (the outbox could not hand it back)."""
    names = [kind.KIND for kind in KINDS]
    assert len(set(names)) == len(names), "two kinds share a KIND name"
    # a file post cannot be sent without its file: the one kind whose row must name something
    least = {FilePost.KIND: {"file": {"id": "f1", "name": "r.png", "size": 1, "content_type": "image/png"}}}
    for kind in KINDS:
        assert type(decode(kind.KIND, least.get(kind.KIND, {}), MESSAGE, COPY)) is kind


def test_about_a_message_is_exactly_the_kinds_that_carry_one() -> None:
    carry = {kind.KIND for kind in KINDS if "message" in {f.name for f in dataclasses.fields(kind)}}
    assert carry == ABOUT_A_MESSAGE


# (kind, payload, message) → the decoder refuses the row
UNDECODABLE: dict[str, tuple[str, dict[str, Any] | None, Message | None]] = {
    "an unknown kind": ("smoke_signal", None, None),
    "an unknown kind, with a message": ("smoke_signal", {"text": "x"}, MESSAGE),
    "an empty kind": ("", None, None),
    "a kind in the wrong case": ("NOTICE", {"text": "x"}, None),
    "a line whose message is gone": (Line.KIND, None, None),
    "an edit whose message is gone": (Edit.KIND, None, None),
    "a deletion whose message is gone": (Deletion.KIND, None, None),
    "a file post without its file": (FilePost.KIND, {"text": "x"}, None),
    "a file post whose file is not readable": (FilePost.KIND, {"file": {"id": "f1"}, "text": "x"}, None),
}


@pytest.mark.parametrize(("kind", "payload", "message"), UNDECODABLE.values(), ids=UNDECODABLE.keys())
def test_undecodable_rows(kind: str, payload: dict[str, Any] | None, message: Message | None) -> None:
    with pytest.raises(UndecodableDelivery):
        decode(kind, payload, message, COPY)


# --- properties ---------------------------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8"), max_size=200)
addresses = st.none() | st.emails()
copies = st.none() | st.text(min_size=1, max_size=30).map(RemoteId)
messages = st.builds(
    Message,
    id=st.uuids().map(str),
    conversation_id=st.just(ConversationId("c1")),
    seq=st.integers(min_value=1, max_value=2**31),
    author=st.builds(Participant, role=st.sampled_from(Role), name=texts),
    text=texts,
    created_at=st.datetimes(timezones=st.just(UTC)),
)
outbounds: st.SearchStrategy[tuple[Outbound, Message | None, RemoteId | None]] = st.one_of(
    st.tuples(st.sampled_from([OpenThread(), RootState()]), st.none(), st.none()),
    st.tuples(st.builds(Transcript, texts, addresses), st.none(), st.none()),
    st.tuples(st.builds(Notice, texts), st.none(), st.none()),
    messages.map(lambda m: (Line(m), m, None)),
    st.tuples(messages, copies, st.sampled_from([Edit, Deletion])).map(lambda t: (t[2](t[0], t[1]), t[0], t[1])),
    st.tuples(st.builds(Erase, copies), st.none(), st.none()),
    st.tuples(st.builds(Reminder, texts, st.sampled_from(["here", "none", "U0BOB", "S0TEAM"])), st.none(), st.none()),
    st.tuples(st.builds(Invite, texts, texts), st.none(), st.none()),
    st.tuples(
        st.builds(FilePost, st.builds(Attachment, texts, texts, st.integers(0, 2**40), texts), texts),
        st.none(),
        st.none(),
    ),
    st.tuples(
        st.builds(
            WebhookEvent,
            st.sampled_from(["conversation.closed", "conversation.rated"]),
            st.dictionaries(texts, st.none() | st.integers() | texts | st.lists(texts), max_size=5),
            st.uuids().map(lambda u: u.hex),
        ),
        st.none(),
        st.none(),
    ),
)


@PROPERTY
@given(case=outbounds)
def test_every_kind_survives_the_outbox(case: tuple[Outbound, Message | None, RemoteId | None]) -> None:
    what, message, copy = case
    assert through_the_outbox(what, message, copy) == what

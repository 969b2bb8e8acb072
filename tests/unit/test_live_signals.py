"""``bridge/live.py``: signals between instances (JSON) and the in-process hub of widget sockets."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.live import (
    LiveHub,
    MessageChanged,
    NewMessage,
    RatingRequested,
    Recheck,
    Signal,
    Snapshot,
    StatusChanged,
    Typing,
    signal_from_json,
    signal_to_json,
)
from bridge.model import ConversationId, Message, Participant, Role, Status
from tests.unit import PROPERTY

NOW = datetime(2026, 12, 4, tzinfo=UTC)

SIGNALS: dict[str, Signal] = {
    "a new message": NewMessage(7),
    "a message edited": MessageChanged("m1", 3),
    "a message removed": MessageChanged("m1", 3, removed=True),
    "closed": StatusChanged(Status.CLOSED),
    "reopened": StatusChanged(Status.OPEN),
    "a rating asked for": RatingRequested(),
    "look again": Recheck(),
    "an agent typing": Typing(Participant(Role.AGENT, "Grace", "https://example.org/grace.png")),
    "an agent typing, no avatar": Typing(Participant(Role.AGENT, "Grace")),
}


@pytest.mark.parametrize("signal", SIGNALS.values(), ids=SIGNALS.keys())
def test_round_trip(signal: Signal) -> None:
    carried = json.loads(json.dumps(signal_to_json(signal)))  # NOTIFY carries text
    assert signal_from_json(carried) == signal


def test_every_signal_kind_has_a_row() -> None:
    assert {type(s) for s in SIGNALS.values()} == set(typing.get_args(Signal))


def test_typing_does_not_carry_who_it_is_on_the_team_chat() -> None:
    """The widget sees a name and an avatar, never the agent's Slack or Matrix id."""
    typing_signal = Typing(Participant(Role.AGENT, "Grace", None, remote_id="slack:U123"))
    assert "slack:U123" not in json.dumps(signal_to_json(typing_signal))
    assert signal_from_json(signal_to_json(typing_signal)) == Typing(Participant(Role.AGENT, "Grace"))


def test_a_new_message_travels_between_instances_as_its_seq_only() -> None:
    """The message a signal carries in its own process (the sockets there send it without reading the
    store) never goes into NOTIFY: its text and author stay out of PostgreSQL's notification queue."""
    message = Message(
        "m1", ConversationId("c1"), 7, Participant(Role.AGENT, "Grace", remote_id="slack:U1"), "secret", NOW
    )
    carried = signal_to_json(NewMessage(7, message))
    assert carried == {"k": "message", "seq": 7}
    assert signal_from_json(carried) == NewMessage(7)


def test_a_recheck_travels_without_what_this_instance_saw() -> None:
    """What one instance read of the store says nothing of another's sockets: they look for themselves."""
    carried = signal_to_json(Recheck(Snapshot(9, Status.OPEN, 4, rated=False)))
    assert signal_from_json(carried) == Recheck()


# what the periodic recheck read → whether a socket that has sent this much would find anything new
OPEN, CLOSED = Status.OPEN, Status.CLOSED
ALL_SENT: dict[str, tuple[Snapshot, dict[str, Any], bool]] = {
    "everything sent": (Snapshot(9, OPEN, 4, False), {"last_seq": 9, "read_seq": 4}, True),
    "more sent since the store was read": (Snapshot(9, OPEN, 4, False), {"last_seq": 11, "read_seq": 6}, True),
    "a line the socket never sent": (Snapshot(10, OPEN, 4, False), {"last_seq": 9, "read_seq": 4}, False),
    "read further than the socket showed": (Snapshot(9, OPEN, 5, False), {"last_seq": 9, "read_seq": 4}, False),
    "closed, the socket shows it open": (Snapshot(9, CLOSED, 4, True), {"last_seq": 9, "read_seq": 4}, False),
    "closed and rated, shown closed": (
        Snapshot(9, CLOSED, 4, True),
        {"last_seq": 9, "read_seq": 4, "status": CLOSED},
        True,
    ),
    "closed, no rating, not asked yet": (
        Snapshot(9, CLOSED, 4, False),
        {"last_seq": 9, "read_seq": 4, "status": CLOSED},
        False,
    ),
    "closed, no rating, asked already": (
        Snapshot(9, CLOSED, 4, False),
        {"last_seq": 9, "read_seq": 4, "status": CLOSED, "rating_asked": True},
        True,
    ),
}


@pytest.mark.parametrize(("seen", "socket", "all_sent"), ALL_SENT.values(), ids=ALL_SENT.keys())
def test_what_a_recheck_saw_against_what_a_socket_sent(seen: Snapshot, socket: dict[str, Any], all_sent: bool) -> None:
    shown = {"status": OPEN, "rating_asked": False, **socket}
    assert seen.all_sent(**shown) is all_sent


# JSON from another instance (perhaps another version) → what this one makes of it
FROM_JSON: dict[str, tuple[Any, Signal | None]] = {
    "a seq sent as text": ({"k": "message", "seq": "7"}, NewMessage(7)),
    "removed left out": ({"k": "changed", "id": "m1", "seq": 3}, MessageChanged("m1", 3, False)),
    "an empty avatar": (
        {"k": "typing", "role": "agent", "name": "Grace", "avatar_url": ""},
        Typing(Participant(Role.AGENT, "Grace")),
    ),
    "extra fields from a newer version": ({"k": "rating_requested", "new": 1}, RatingRequested()),
    # never raises: an unknown or garbled signal is None (the reader only looks again later)
    "an unknown kind": ({"k": "confetti"}, None),
    "no kind": ({"seq": 1}, None),
    "an empty object": ({}, None),
    "a kind that is not a string": ({"k": ["message"], "seq": 1}, None),
    "a message without seq": ({"k": "message"}, None),
    "a seq that is not a number": ({"k": "message", "seq": "seven"}, None),
    "a seq that is null": ({"k": "message", "seq": None}, None),
    "a seq that is a list": ({"k": "message", "seq": [1]}, None),
    "a change without id": ({"k": "changed", "seq": 3}, None),
    "a change without seq": ({"k": "changed", "id": "m1"}, None),
    "an unknown status": ({"k": "status", "status": "exploded"}, None),
    "a status left out": ({"k": "status"}, None),
    "typing with an unknown role": ({"k": "typing", "role": "robot", "name": "R2"}, None),
    "typing without a name": ({"k": "typing", "role": "agent"}, None),
}


@pytest.mark.parametrize(("data", "signal"), FROM_JSON.values(), ids=FROM_JSON.keys())
def test_signal_from_json(data: Any, signal: Signal | None) -> None:
    assert signal_from_json(data) == signal


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
kinds = st.sampled_from(["message", "changed", "status", "rating_requested", "recheck", "typing"]) | st.text(max_size=8)
garbled = st.dictionaries(
    st.sampled_from(["seq", "id", "removed", "status", "role", "name", "avatar_url"]) | st.text(max_size=5),
    json_values,
    max_size=5,
)


@PROPERTY
@given(kind=kinds, fields=garbled)
def test_any_json_object_gives_a_signal_or_none(kind: str, fields: dict[str, Any]) -> None:
    result = signal_from_json({**fields, "k": kind})
    assert result is None or isinstance(result, typing.get_args(Signal))


# --- the hub ------------------------------------------------------------------------------------


def drain(queue: Any) -> list[Signal]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def test_a_signal_reaches_every_socket_of_its_conversation_only() -> None:
    hub = LiveHub()
    with hub.subscribe("c1") as a, hub.subscribe("c1") as b, hub.subscribe("c2") as other:
        hub.publish("c1", NewMessage(1))
        hub.publish("c3", NewMessage(2))  # no socket: nothing happens
        assert (drain(a), drain(b), drain(other)) == ([NewMessage(1)], [NewMessage(1)], [])


def test_a_full_queue_drops_the_oldest() -> None:
    hub = LiveHub(queue_limit=3)
    with hub.subscribe("c1") as queue:
        for seq in range(1, 6):
            hub.publish("c1", NewMessage(seq))
        assert drain(queue) == [NewMessage(3), NewMessage(4), NewMessage(5)]


def test_a_slow_socket_does_not_hold_back_a_fast_one() -> None:
    hub = LiveHub(queue_limit=2)
    with hub.subscribe("c1") as slow, hub.subscribe("c1") as fast:
        seen = []
        for seq in range(1, 5):
            hub.publish("c1", NewMessage(seq))
            seen += drain(fast)
        assert seen == [NewMessage(s) for s in range(1, 5)]
        assert drain(slow) == [NewMessage(3), NewMessage(4)]


def test_unsubscribe_cleans_up_and_socket_count_follows() -> None:
    hub = LiveHub()
    assert hub.socket_count == 0
    with hub.subscribe("c1") as first:
        with hub.subscribe("c1"), hub.subscribe("c2"):
            assert hub.socket_count == 3
        assert hub.socket_count == 1
        hub.publish("c1", RatingRequested())
        assert drain(first) == [RatingRequested()]
    assert hub.socket_count == 0
    assert not hub._subscribers  # no empty set left behind per conversation ever seen


def test_unsubscribe_happens_when_the_socket_handler_fails() -> None:
    hub = LiveHub()
    with pytest.raises(ConnectionResetError), hub.subscribe("c1"):
        raise ConnectionResetError
    assert hub.socket_count == 0
    hub.publish("c1", NewMessage(1))  # nobody left: nothing to do, nothing raised


@PROPERTY
@given(limit=st.integers(min_value=1, max_value=8), count=st.integers(min_value=0, max_value=30))
def test_a_queue_keeps_the_newest_signals_in_order(limit: int, count: int) -> None:
    hub = LiveHub(queue_limit=limit)
    with hub.subscribe("c1") as queue:
        for seq in range(count):
            hub.publish("c1", NewMessage(seq))
        assert drain(queue) == [NewMessage(s) for s in range(max(0, count - limit), count)]

"""What endpoints tell the core: typed inbound events, never raw payloads."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bridge.model import Attachment, EndpointName, Participant, RemoteId, ThreadRef


@dataclass(frozen=True)
class InboundEvent:
    endpoint: EndpointName
    thread: ThreadRef
    #: the event's own id on the endpoint; the same id twice is one event (retries, replays)
    remote_id: RemoteId


@dataclass(frozen=True)
class MessageReceived(InboundEvent):
    """A person wrote in the conversation's thread (already converted to plain text; ``html``: its
    formatting as the sanitized subset of CONTRACT §7, made by the endpoint; ``attachments``: the files
    shared with it, already fetched into the bridge's store by the endpoint)."""

    author: Participant
    text: str
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class MessageEdited(InboundEvent):
    """A person changed an earlier reply (``original`` is that reply's remote id)."""

    original: RemoteId
    text: str
    html: str | None = None


@dataclass(frozen=True)
class MessageDeleted(InboundEvent):
    """A person deleted an earlier reply. The thread may be ``UNKNOWN_THREAD``: the core finds the
    conversation from ``original``."""

    original: RemoteId


#: the thread of a change whose endpoint cannot tell it (a Matrix redaction names only the event it takes
#: back): the core finds the conversation from the changed reply's remote id in its store
UNKNOWN_THREAD = ThreadRef("")


class Action(StrEnum):
    CLAIM = "claim"
    CLOSE = "close"


@dataclass(frozen=True)
class ActionRequested(InboundEvent):
    """A button (Slack Claim/Close) was pressed on the thread's root."""

    action: Action
    actor: Participant


@dataclass(frozen=True)
class Rejected(InboundEvent):
    """A reply the endpoint will not relay (e.g. from someone outside MATRIX_STAFF): the thread is told why."""

    author: Participant
    reason: str

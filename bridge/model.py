"""The neutral model every endpoint speaks: conversations, participants, messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NewType

ConversationId = NewType("ConversationId", str)
#: Where a conversation lives on one endpoint, opaque to the core (``C0123:1712.0001``, a Matrix event id).
ThreadRef = NewType("ThreadRef", str)
#: One message's id on one endpoint (Slack ``channel:ts``, Matrix event id).
RemoteId = NewType("RemoteId", str)
#: The name of an endpoint: ``slack``, ``matrix``, ``email``.
EndpointName = NewType("EndpointName", str)


class Role(StrEnum):
    VISITOR = "visitor"
    AGENT = "agent"
    SYSTEM = "system"


class Status(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class Participant:
    role: Role
    name: str
    avatar_url: str | None = None
    #: who this is on the endpoint it came from (``slack:U123``, ``matrix:@alice:example.org``)
    remote_id: str | None = None


@dataclass(frozen=True)
class Visitor:
    name: str | None = None
    email: str | None = None
    #: a verified ``Sitechat.identify()`` id: links the visitor's conversations
    external_id: str | None = None


@dataclass(frozen=True)
class PageView:
    url: str
    title: str | None = None
    referrer: str | None = None


@dataclass(frozen=True)
class ClientFacts:
    """What the widget server found out about the visitor's browser when the conversation started: from
    its ``User-Agent`` (browser, OS, device) and, with a GeoIP database, its address (country, city)."""

    browser: str | None = None
    os: str | None = None
    device: str | None = None
    country: str | None = None
    city: str | None = None

    @classmethod
    def stored(cls, value: object) -> ClientFacts:
        """As the store keeps them (a JSON object); anything else is no facts."""
        if not isinstance(value, dict):
            return cls()
        return cls(**{k: v for k, v in value.items() if k in cls.__dataclass_fields__ and isinstance(v, str) and v})


@dataclass(frozen=True)
class Message:
    id: str
    conversation_id: ConversationId
    seq: int
    author: Participant
    text: str
    created_at: datetime
    client_msg_id: str | None = None
    edited_at: datetime | None = None
    deleted: bool = False
    #: which endpoint it came from (``widget``, ``slack``…): mirroring skips the origin
    origin: str = "widget"
    #: the team member's formatting: the sanitized HTML subset of CONTRACT §7 (``text`` is the same
    #: message as plain text); None for plain messages, and always for the visitor's
    html: str | None = None


@dataclass(frozen=True)
class Conversation:
    id: ConversationId
    site_id: str
    topic: str | None
    status: Status
    visitor: Visitor
    created_at: datetime
    last_activity_at: datetime
    locale: str | None = None
    timezone: str | None = None
    client_address: str | None = None
    pages: tuple[PageView, ...] = ()
    claimed_by: str | None = None
    closed_at: datetime | None = None
    rating_score: int | None = None
    rating_comment: str | None = None
    kind: str = "chat"
    #: the browser's ``User-Agent`` at the start, as it came
    user_agent: str | None = None
    client: ClientFacts = ClientFacts()
    #: the language the bridge speaks to the visitor (``config.sites.LANGUAGES``)
    language: str = "en"
    #: when the automatic greeting went out (CONTRACT §10); None: not (yet)
    greeted_at: datetime | None = None
    #: the visitor's last message someone in the team has read (0: none yet), shown as "Seen"
    team_read_seq: int = 0

    @property
    def visitor_name(self) -> str:
        return self.visitor.name or "Visitor"

    @property
    def current_page(self) -> PageView | None:
        return self.pages[-1] if self.pages else None

    @property
    def state_label(self) -> str:
        """The state as people read it on the thread's root message."""
        if self.kind == "offline":
            return "Offline message"
        if self.rating_score is not None:
            comment = f": {self.rating_comment}" if self.rating_comment else ""
            return f"Rated {self.rating_score}/5{comment}"
        if self.status is Status.CLOSED:
            return "Closed"
        if self.claimed_by:
            return f"Claimed by {self.claimed_by}"
        return "Open"

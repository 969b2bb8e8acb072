"""What the widget API answers (CONTRACT §3), typed once.

Each answer is a pydantic model: the handlers serialise it with :meth:`Answer.dump`, and the OpenAPI
document (``widget_server.openapi``) is generated from the same classes in serialization mode, so the
document says exactly what the server sends. A field declared with :func:`omitted` is left out of the
JSON when it is None (``client_msg_id``, ``edited_at``, ``deleted``, ``avatar_url``); a field typed
``X | None`` without a default is always there, ``null`` when empty (``office_hours``, a rating's
``comment``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, RootModel, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from bridge import model
from bridge.faces import STORED_FACE, face_attachment


def iso(value: datetime) -> str:
    """ISO 8601 with ``Z`` for UTC, as the widget has always been sent it."""
    return value.isoformat().replace("+00:00", "Z")


Timestamp = Annotated[
    datetime,
    PlainSerializer(iso, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "description": "ISO 8601, UTC"}),
]


Uri = Annotated[str, Field(json_schema_extra={"format": "uri"})]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # the key is absent, never null: a default would say otherwise


def omitted(description: str | None = None) -> Any:
    """A field that is left out of the answer when it has no value (type it ``X | SkipJsonSchema[None]``)."""
    return Field(default=None, json_schema_extra=_no_default, description=description)


class Answer(BaseModel):
    model_config = ConfigDict(frozen=True)

    def dump(self) -> dict[str, Any]:
        """The JSON object this answer is on the wire: fields with a default are left out while None."""
        return self.model_dump(mode="json", exclude=_left_out(self) or None)


def _left_out(answer: BaseModel) -> dict[str, Any]:
    """What ``model_dump(exclude=…)`` leaves out: the empty optional fields, in nested answers too."""
    out: dict[str, Any] = {}
    for name, field in type(answer).model_fields.items():
        value = getattr(answer, name)
        if value is None and not field.is_required():
            out[name] = True
        elif isinstance(value, BaseModel) and (inner := _left_out(value)):
            out[name] = inner
        elif isinstance(value, list):
            items = {
                i: inner for i, item in enumerate(value) if isinstance(item, BaseModel) and (inner := _left_out(item))
            }
            if items:
                out[name] = items
    return out


class ErrorDetail(Answer):
    code: str = Field(description="stable, machine-readable: bad_json, invalid, forbidden, …")
    message: str = Field(description="what was wrong, in plain words")


class Error(Answer):
    error: ErrorDetail


class Topic(Answer):
    id: str
    label: str


class Invitation(Answer):
    after_seconds: float = Field(gt=0, description="how long the visitor is on a matching page first")
    pages: list[str] = Field(description="URL path globs (* matches anything); empty: every page")


class SiteInfo(Answer):
    site: str
    name: str
    online: bool = Field(description="someone can answer now (else offer the offline form)")
    greeting: str = Field(description="in the site's language, else the one the request's Accept-Language prefers")
    topics: list[Topic]
    office_hours: str | None = Field(description="e.g. Mon-Fri 09:00-17:00 Europe/Berlin")
    language: str | SkipJsonSchema[None] = omitted(
        "the language for every visitor of the site (en, de, fr, es); absent: the visitor's browser decides"
    )
    greetings: dict[str, str] = Field(
        default_factory=dict, description="the greeting in each language the widget speaks (en, de, fr, es)"
    )
    invitation: Invitation | SkipJsonSchema[None] = omitted(
        "the widget invites the visitor to chat after a while on some pages; absent: never"
    )


class Conversation(Answer):
    id: str = Field(min_length=22)
    status: model.Status
    created_at: Timestamp

    @classmethod
    def of(cls, conv: model.Conversation) -> Conversation:
        return cls(id=conv.id, status=conv.status, created_at=conv.created_at)


class ConversationStarted(Answer):
    conversation: Conversation
    token: str = Field(
        min_length=43,
        description="the visitor's secret for this one conversation: send it as a bearer token "
        "(and in the socket's hello frame), never in a URL",
    )


class Author(Answer):
    role: model.Role
    name: str
    avatar_url: Uri | SkipJsonSchema[None] = omitted()

    @classmethod
    def of(cls, person: model.Participant, link: Callable[[model.Attachment], str] | None = None) -> Author:
        """A photo the bridge keeps (``attachment:{id}``, a Matrix avatar: CONTRACT §8) becomes the same
        signed, expiring link as a file's; without ``link`` it is left out, never sent as it is stored."""
        avatar = person.avatar_url or None
        if avatar is not None and avatar.startswith(STORED_FACE):
            kept = face_attachment(avatar)
            avatar = (link(model.Attachment(kept, "avatar", 0, "image/*")) or None) if link and kept else None
        return cls(role=person.role, name=person.name, avatar_url=avatar)


class AttachmentInfo(Answer):
    id: str
    name: str
    size: int = Field(ge=0, description="bytes")
    content_type: str = Field(description="decided from the file's bytes")
    url: str = Field(description="a signed link that expires (SITECHAT_ATTACHMENT_LINK_HOURS); 403 after that")


class Message(Answer):
    id: str
    seq: int = Field(ge=1, description="1, 2, 3… within the conversation, no gaps")
    conversation_id: str
    author: Author
    text: str = Field(description="plain text: show it as text, never as HTML")
    html: str | SkipJsonSchema[None] = omitted(
        "an agent's formatting, the same message as sanitized HTML: only p br strong em del code pre "
        "blockquote ul ol li and a (http/https href, rel=noopener noreferrer nofollow, target=_blank). "
        "Build it into the page from those tags yourself, never as markup; absent for plain messages "
        "and always for the visitor's"
    )
    created_at: Timestamp
    client_msg_id: str | SkipJsonSchema[None] = omitted()
    edited_at: Timestamp | SkipJsonSchema[None] = omitted("set when an agent edited the message")
    deleted: Literal[True] | SkipJsonSchema[None] = omitted("the message was deleted; its text is empty")
    attachments: list[AttachmentInfo] | SkipJsonSchema[None] = omitted("the files sent with the message")

    @classmethod
    def of(cls, m: model.Message, link: Callable[[model.Attachment], str] | None = None) -> Message:
        files = (
            [
                AttachmentInfo(id=a.id, name=a.name, size=a.size, content_type=a.content_type, url=link(a))
                for a in m.attachments
            ]
            if link is not None
            else []
        )
        return cls(
            id=m.id,
            seq=m.seq,
            conversation_id=m.conversation_id,
            author=Author.of(m.author, link),
            text=m.text,
            html=m.html or None,
            created_at=m.created_at,
            client_msg_id=m.client_msg_id or None,
            edited_at=m.edited_at or None,
            deleted=True if m.deleted else None,
            attachments=files or None,
        )


class Uploaded(Answer):
    attachment: AttachmentInfo


class MessageAnswer(Answer):
    message: Message


class MessageList(Answer):
    status: model.Status
    messages: list[Message]


class Closed(Answer):
    status: Literal[model.Status.CLOSED]


class Rated(Answer):
    score: int = Field(ge=1, le=5)
    comment: str | None


class Accepted(Answer):
    status: Literal["queued", "received"]


class Health(Answer):
    status: str


class Readiness(Answer):
    status: Literal["ready", "not_ready"]
    #: why the instance is not ready (503)
    problems: list[str]
    #: worth an admin's attention, yet ready (200): e.g. Slack's app_rate_limited
    warnings: list[str] = Field(default_factory=list)


class WidgetTexts(RootModel[dict[str, str]]):
    """A language's pack of the widget's texts: ``{key: text}``, one for each ``widget.*`` entry the
    language's catalogue translates (English is built into widget.js). ``make widget`` writes the packs
    (``widget/catalogue.mjs``); the server sends the file as it is, so this only describes it."""

    model_config = ConfigDict(frozen=True)


#: every answer, by the name the OpenAPI document gives it (its class name)
ANSWER_MODELS: tuple[type[Answer | WidgetTexts], ...] = (
    Error,
    SiteInfo,
    ConversationStarted,
    MessageAnswer,
    MessageList,
    Uploaded,
    Closed,
    Rated,
    Accepted,
    Health,
    Readiness,
    WidgetTexts,
)

"""What the widget may send, validated at the edge. Anything else is a 4xx with a plain message."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictInt,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from widget_server import addresses

MAX_TEXT = 4000
#: the largest seq a client may name: the store's seq column is a 32-bit INTEGER (PostgreSQL refuses more)
MAX_SEQ = 2**31 - 1
# Characters that rewrite how text around them reads (Trojan Source) and C0/C1 controls but tab/newline.
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _clean(value: str) -> str:
    for ch in value:
        if ch in _BIDI:
            raise ValueError("bidirectional override characters are not allowed")
        if 0xD800 <= ord(ch) <= 0xDFFF:
            raise ValueError("text must be valid Unicode (a lone surrogate was sent)")
        if ch not in "\n\t" and unicodedata.category(ch) == "Cc":
            raise ValueError("control characters (such as NUL) are not allowed")
    return value


def _line(value: str) -> str:
    return " ".join(_clean(value).split())


def _message_text(value: str) -> str:
    value = _clean(value).strip()
    if not value:
        raise ValueError("text is empty")
    if len(value) > MAX_TEXT:
        raise ValueError(f"text is longer than {MAX_TEXT} characters")
    return value


def _email(value: str) -> str:
    """The one address rule (``widget_server.addresses``): what is accepted here, the mailer can send."""
    return addresses.mailable(_clean(value))


def _url(value: str) -> str:
    value = _clean(value).strip()
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return value


# The same rules as JSON Schema patterns, for the OpenAPI document (pydantic enforces the validators above;
# these only describe them): no C0/C1 control but tab and newline, no bidi override; text has a non-space.
_BANNED = r"\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069"
PLAIN_PATTERN = rf"^[^{_BANNED}]*$"
TEXT_PATTERN = rf"^[^{_BANNED}]*[^\s{_BANNED}][^{_BANNED}]*$"
URL_PATTERN = rf"^\s*https?://[^{_BANNED}]*$"
EMAIL_PATTERN = addresses.PATTERN


def _described(pattern: str, **extra: JsonValue) -> Any:
    return Field(json_schema_extra={"pattern": pattern, **extra})


Line = Annotated[str, AfterValidator(_line), _described(PLAIN_PATTERN)]
Email = Annotated[
    str,
    Field(max_length=320),
    AfterValidator(_email),
    _described(
        EMAIL_PATTERN,
        format="email",
        description="an address mail can be sent to (ASCII before the @, no reserved names such as .local); "
        "kept and mailed in its ASCII form",
    ),
]
Url = Annotated[str, Field(max_length=2000), AfterValidator(_url), _described(URL_PATTERN)]
# the schema says 4000: the server also takes up to twice that when trimming brings it back to 4000
Text = Annotated[
    str, Field(max_length=MAX_TEXT * 2), AfterValidator(_message_text), _described(TEXT_PATTERN, maxLength=MAX_TEXT)
]
Plain = Annotated[str, AfterValidator(_clean), _described(PLAIN_PATTERN)]


#: 16–64 characters of base64url or hex: at least 96 random bits as the widget makes them, nothing else
VisitorKey = Annotated[str, Field(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", str_max_length=20_000)


class VisitorIn(_In):
    name: Annotated[Line, Field(max_length=200)] | None = None
    email: Email | None = None
    id: Annotated[Line, Field(max_length=200)] | None = None
    hash: Annotated[Plain, Field(max_length=200)] | None = None
    #: the widget's random key for this browser (CONTRACT §8): links the visitor's chats on the site
    key: VisitorKey | None = None


class PageIn(_In):
    url: Url
    title: Annotated[Line, Field(max_length=500)] | None = None
    referrer: Annotated[Plain, Field(max_length=2000)] | None = None


class StartConversation(_In):
    visitor: VisitorIn = Field(default_factory=VisitorIn)
    topic: Annotated[str, Field(max_length=64)] | None = None
    page: PageIn | None = None
    locale: Annotated[Line, Field(max_length=64)] | None = None
    timezone: Annotated[Line, Field(max_length=64)] | None = None


def _text_or_files(schema: dict[str, Any]) -> None:
    """The document says what ``PostMessage`` enforces: some text, or at least one file (``text`` has no
    ``null`` default there: it is left out, never null)."""
    schema["properties"]["text"].pop("default", None)
    schema["anyOf"] = [
        {"required": ["text"]},
        {"required": ["attachment_ids"], "properties": {"attachment_ids": {"minItems": 1}}},
    ]


#: the most files one message may carry
MAX_ATTACHMENTS = 10
AttachmentId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class ResumeConversation(_In):
    """A follow-up mail's link brought the visitor back (CONTRACT §8): its ticket, ``{id}.{expires}.{signature}``."""

    ticket: Annotated[str, Field(min_length=5, max_length=120, pattern=r"^[A-Za-z0-9_-]+\.[0-9]+\.[0-9a-f]+$")]


class PostMessage(_In):
    model_config = ConfigDict(json_schema_extra=_text_or_files)
    client_msg_id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:\-]+$")]
    text: Text | SkipJsonSchema[None] = Field(default=None, description="may be left out when files are sent")
    attachment_ids: list[AttachmentId] = Field(
        default_factory=list,
        max_length=MAX_ATTACHMENTS,
        description="files uploaded to this conversation before (POST …/attachments), sent with the text",
    )

    @model_validator(mode="before")
    @classmethod
    def _files_need_no_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("attachment_ids") and isinstance(data.get("text"), str):
            if not data["text"].strip():
                data = {k: v for k, v in data.items() if k != "text"}
        return data

    @model_validator(mode="after")
    def _something(self) -> PostMessage:
        if self.text is None and not self.attachment_ids:
            raise ValueError("text is empty")
        return self


def _whole_number(value: object) -> object:
    """JSON has one number type: 4 and 4.0 are the same integer; "4" and true are not numbers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# the bounds go inside the before-validator, or pydantic writes them into the JSON schema as "ge"/"le"
Score = Annotated[Annotated[StrictInt, Field(ge=1, le=5)], BeforeValidator(_whole_number)]
Seq = Annotated[Annotated[StrictInt, Field(ge=0, le=MAX_SEQ)], BeforeValidator(_whole_number)]


class Rating(_In):
    score: Score
    comment: Annotated[Plain, Field(max_length=2000)] | None = None


class TranscriptRequest(_In):
    email: Email


class OfflineMessage(_In):
    name: Annotated[Line, Field(max_length=200)] | None = None
    email: Email
    text: Text


class Hello(_In):
    type: str
    token: Annotated[Plain, Field(min_length=1, max_length=200)]
    after: Seq = 0


class PageFrame(_In):
    url: Url
    title: Annotated[Line, Field(max_length=500)] | None = None

"""What the widget may send, validated at the edge. Anything else is a 4xx with a plain message."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

MAX_TEXT = 4000
# Characters that rewrite how text around them reads (Trojan Source) and C0/C1 controls but tab/newline.
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_EMAIL = re.compile(r"^[^@\s<>\"]{1,64}@[^@\s<>\"]{1,255}\.[^@\s<>\".]{2,}$")


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
    value = value.strip()
    if not _EMAIL.match(value):
        raise ValueError("not an email address like ann@example.com")
    return value


def _url(value: str) -> str:
    value = _clean(value).strip()
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return value


Line = Annotated[str, AfterValidator(_line)]
Email = Annotated[str, Field(max_length=320), AfterValidator(_email)]
Url = Annotated[str, Field(max_length=2000), AfterValidator(_url)]
Text = Annotated[str, Field(max_length=MAX_TEXT * 2), AfterValidator(_message_text)]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", str_max_length=20_000)


class VisitorIn(_In):
    name: Annotated[Line, Field(max_length=200)] | None = None
    email: Email | None = None
    id: Annotated[Line, Field(max_length=200)] | None = None
    hash: Annotated[str, Field(max_length=200)] | None = None


class PageIn(_In):
    url: Url
    title: Annotated[Line, Field(max_length=500)] | None = None
    referrer: Annotated[str, Field(max_length=2000)] | None = None


class StartConversation(_In):
    visitor: VisitorIn = Field(default_factory=VisitorIn)
    topic: Annotated[str, Field(max_length=64)] | None = None
    page: PageIn | None = None
    locale: Annotated[Line, Field(max_length=64)] | None = None
    timezone: Annotated[Line, Field(max_length=64)] | None = None


class PostMessage(_In):
    client_msg_id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:\-]+$")]
    text: Text


class Rating(_In):
    score: Annotated[StrictInt, Field(ge=1, le=5)]
    comment: Annotated[str, Field(max_length=2000), AfterValidator(_clean)] | None = None


class TranscriptRequest(_In):
    email: Email


class OfflineMessage(_In):
    name: Annotated[Line, Field(max_length=200)] | None = None
    email: Email
    text: Text


class Hello(_In):
    type: str
    token: Annotated[str, Field(min_length=1, max_length=200)]
    after: Annotated[StrictInt, Field(ge=0)] = 0


class PageFrame(_In):
    url: Url
    title: Annotated[Line, Field(max_length=500)] | None = None

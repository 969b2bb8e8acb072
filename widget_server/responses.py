"""JSON answers: messages as the contract shapes them, and errors as ``{"error": {code, message}}``."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from bridge.model import Conversation, Message

JSON_LIMIT_DEPTH = 32


def iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def message_json(m: Message) -> dict[str, Any]:
    author: dict[str, Any] = {"role": m.author.role.value, "name": m.author.name}
    if m.author.avatar_url:
        author["avatar_url"] = m.author.avatar_url
    out: dict[str, Any] = {
        "id": m.id,
        "seq": m.seq,
        "conversation_id": m.conversation_id,
        "author": author,
        "text": m.text,
        "created_at": iso(m.created_at),
    }
    if m.client_msg_id:
        out["client_msg_id"] = m.client_msg_id
    if m.edited_at:
        out["edited_at"] = iso(m.edited_at)
    if m.deleted:
        out["deleted"] = True
    return out


def conversation_json(c: Conversation) -> dict[str, Any]:
    return {"id": c.id, "status": c.status.value, "created_at": iso(c.created_at)}


ORIGIN_REFUSED = "origin_not_allowed"


class OriginRefusal(web.Response):
    """A 403 for an origin the site does not allow: the CORS middleware never adds its headers to it."""


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    kind = OriginRefusal if code == ORIGIN_REFUSED else web.Response
    body = json.dumps({"error": {"code": code, "message": message}})
    return kind(text=body, status=status, headers=headers, content_type="application/json")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> web.Response:
        return error(self.status, self.code, self.message, self.headers)


def validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, d + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, d + 1) for v in item)
    return deepest


def parse_json(raw: str | bytes) -> Any:
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ApiError(400, "bad_json", "the JSON is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad_json", f"the body is not valid JSON: {exc}") from None
    if _depth(data, JSON_LIMIT_DEPTH) > JSON_LIMIT_DEPTH:
        raise ApiError(400, "bad_json", "the JSON is nested too deeply")
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    return data

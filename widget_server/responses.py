"""JSON answers: the typed answers of ``widget_server.answers`` as responses, errors as
``{"error": {code, message}}``, and the request body's JSON read with limits."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from bridge.model import Attachment, Message
from widget_server import answers

JSON_LIMIT_DEPTH = 32


def message_json(m: Message, link: Callable[[Attachment], str] | None = None) -> dict[str, Any]:
    """A message as the widget gets it, over HTTP and the socket alike (``answers.Message``); ``link``
    makes its files' download links."""
    return answers.Message.of(m, link).dump()


def answer(body: answers.Answer, status: int = 200) -> web.Response:
    """A typed answer as a JSON response: what ``widget_server.openapi`` documents for it."""
    return web.json_response(body.dump(), status=status)


ORIGIN_REFUSED = "origin_not_allowed"


class OriginRefusal(web.Response):
    """A 403 for an origin the site does not allow: the CORS middleware never adds its headers to it."""


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    kind = OriginRefusal if code == ORIGIN_REFUSED else web.Response
    body = json.dumps(answers.Error(error=answers.ErrorDetail(code=code, message=message)).dump())
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

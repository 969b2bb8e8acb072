"""What goes wrong with the local homeserver, as exceptions its callers (the demo, the tests) catch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class LocalHomeserverError(RuntimeError):
    """The local homeserver could not be set up, started or stopped."""


class MatrixHTTPError(RuntimeError):
    """A request to the homeserver got a non-200 answer."""

    def __init__(self, method: str, path: str, status: int, body: Mapping[str, Any]) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.errcode: str | None = body.get("errcode") if isinstance(body.get("errcode"), str) else None
        self.error: str = str(body.get("error", ""))
        self.body = dict(body)
        super().__init__(f"{method} {path} -> {status} {self.errcode or ''} {self.error}".strip())

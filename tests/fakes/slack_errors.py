"""The fake Slack's ``ok: false`` answer, shared by its parts (``slack_api``, ``slack_files``)."""

from __future__ import annotations

from typing import Any


class SlackError(Exception):
    """An ok:false answer (HTTP 200) with Slack's error code."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra

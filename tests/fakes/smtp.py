"""A real SMTP server's handler for tests (aiosmtpd): it keeps every mail it is given."""

from __future__ import annotations

import email
from email.message import Message
from typing import Any


class Inbox:
    def __init__(self) -> None:
        self.mails: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(email.message_from_bytes(envelope.content))
        return "250 OK"

"""The widget's links to files (CONTRACT §7): ``{PUBLIC_URL}/api/v1/attachments/{id}?exp=…&sig=…``, signed
with the key every instance shares and good until ``exp``.

The expiry is rounded up to the hour, so the same file keeps the same link for a while and the browser
can cache an image instead of loading it again for every message list.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from bridge.files import link_signature
from bridge.model import Attachment

ROUND_SECONDS = 3600


@dataclass(frozen=True)
class AttachmentLinks:
    public_url: str
    key: bytes
    hours: float = 24.0
    clock: Callable[[], float] = field(default=time.time)

    def expires(self) -> int:
        return math.ceil((self.clock() + self.hours * 3600) / ROUND_SECONDS) * ROUND_SECONDS

    def url(self, file: Attachment) -> str:
        expires = self.expires()
        signature = link_signature(self.key, file.id, expires)
        return f"{self.public_url}/api/v1/attachments/{quote(file.id)}?exp={expires}&sig={signature}"

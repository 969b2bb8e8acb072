"""The webhook's signature, pure: ``X-Sitechat-Signature: t={unix},v1={hex}``.

``v1`` is the hex HMAC-SHA256 of ``"{t}.{body}"`` with ``SITECHAT_WEBHOOK_SECRET``: the receiver
recomputes it over the exact bytes it got, compares in constant time, and refuses a ``t`` too far from
its own clock (a replayed request). ``t`` is the time of each attempt, so a retry is signed anew; the
body and ``X-Sitechat-Delivery`` stay the same.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Sitechat-Signature"
DELIVERY_HEADER = "X-Sitechat-Delivery"
EVENT_HEADER = "X-Sitechat-Event"
#: how far a receiver should let ``t`` be from its clock
TOLERANCE_SECONDS = 300


def digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header's value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={digest(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: float = TOLERANCE_SECONDS) -> bool:
    """What a receiver does: the header is well formed, fresh, and one of its ``v1`` values matches."""
    fields = [part.partition("=") for part in header.split(",")]
    stamps = [value for key, sep, value in fields if sep and key.strip() == "t"]
    signatures = [value.strip() for key, sep, value in fields if sep and key.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not signatures:
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance:
        return False
    expected = digest(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)

"""Failures an endpoint reports to the delivery workers. None of them drops a delivery."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.endpoint import Sent


class DeliveryError(Exception):
    """Base: the delivery stays pending and is tried again later."""

    def __init__(
        self, reason: str, *, retry_after: float | None = None, maybe_sent: bool = False, sent: Sequence[Sent] = ()
    ) -> None:
        super().__init__(reason)
        #: the prefix of the batch that did go out before the failure
        self.sent = list(sent)
        self.reason = reason
        #: the endpoint's own "not before" (Slack ``Retry-After``), seconds
        self.retry_after = retry_after
        #: the request may have landed (timeout, dropped connection): check before sending again
        self.maybe_sent = maybe_sent


class RetryLater(DeliveryError):
    """A passing fault: rate limit, 5xx, timeout."""


class DestinationUnavailable(DeliveryError):
    """The destination itself is broken (channel gone, token revoked): pause it and say so until fixed."""

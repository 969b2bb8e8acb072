"""What a failed Slack call means for a delivery: wait, look before resending, or pause the channel."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp
from slack_sdk.errors import SlackApiError

from adapters.pacing import Pacer
from bridge.endpoint import Sent
from bridge.errors import DeliveryError, DestinationUnavailable, RetryLater

#: Slack's answers that no retry will cure: the channel or the token needs a person
BROKEN = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "no_permission",
        "team_access_not_granted",
    }
)


def describe(exc: BaseException) -> str:
    """A failure in a few words, for logs and /readyz (Slack's error code when it gave one)."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or exc.response.status_code)
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")


def as_delivery_error(
    exc: BaseException, channel: str, pacer: Pacer, sent: Sequence[Sent], *, partly_posted: bool = False
) -> DeliveryError:
    """The delivery error for ``exc``; ``partly_posted``: some parts of the failed delivery are in Slack
    already, so the retry must look for them before posting (else they would be posted twice)."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        code = exc.response.get("error") if isinstance(exc.response.data, dict) else None
        if status == 429:
            retry_after = float(exc.response.headers.get("Retry-After", exc.response.headers.get("retry-after", 1)))
            pacer.block(channel, retry_after)
            return RetryLater(
                f"Slack rate limit on {channel}", retry_after=retry_after, maybe_sent=partly_posted, sent=sent
            )
        if code in BROKEN:
            return DestinationUnavailable(f"Slack says {code} for {channel}", maybe_sent=partly_posted, sent=sent)
        if status >= 500 or code is None:
            return RetryLater(f"Slack answered {status}", maybe_sent=True, sent=sent)
        return RetryLater(f"Slack refused: {code}", maybe_sent=partly_posted, sent=sent)
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ClientError | ValueError):
        # a timeout or a dropped connection does not say whether the post landed
        return RetryLater(f"Slack did not answer ({describe(exc)})", maybe_sent=True, sent=sent)
    return RetryLater(f"unexpected error: {describe(exc)}", maybe_sent=True, sent=sent)

"""What a homeserver's answer means, in plain words and as the delivery workers need it. Pure: no I/O.

matrix-nio does not raise on a refused request: it returns an ``…Error`` response carrying the
Matrix ``errcode`` (``status_code``), the HTTP status (``transport_response.status``, absent when
nio could not read the answer at all) and sometimes ``retry_after_ms``. Everything here reads those
attributes with ``getattr`` because every nio error class spells them the same way but shares no
useful base class, and because an answer nio could not parse may lack any of them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from bridge.errors import DeliveryError, DestinationUnavailable, RetryLater

#: errcodes that mean "this access token is no good": log in again, on the same device
TOKEN_ERRORS = frozenset({"M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"})


class LoginFailed(Exception):
    """The homeserver refused the bot's credentials (as opposed to not answering)."""


def describe(exc: BaseException) -> str:
    """An exception in a log line: its kind, which often says more than its (sometimes empty) text."""
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")


def http_status(response: Any) -> int | None:
    """The HTTP status of a nio response; None when nio could not read the answer."""
    status = getattr(getattr(response, "transport_response", None), "status", None)
    return status if isinstance(status, int) else None


def errcode(response: Any) -> str | None:
    code = getattr(response, "status_code", None)
    return code if isinstance(code, str) else None


def describe_response(response: Any) -> str:
    """A refused request in a log line or a problem report: status, errcode, the server's words."""
    message = getattr(response, "message", None) or "no details"
    return " ".join(str(x) for x in (http_status(response), errcode(response), message) if x)


def is_transient(response: Any) -> bool:
    """An error answer that says nothing about the request itself: a rate limit, a server or
    gateway error, or an answer nio could not read."""
    status = http_status(response)
    return status is None or status == 429 or status >= 500 or errcode(response) == "M_LIMIT_EXCEEDED"


def login_error(what: str, response: Any) -> Exception:
    """A refused login as :class:`LoginFailed` when the credentials are wrong (reported until fixed),
    else a plain error (the homeserver had a bad moment: try again later)."""
    if errcode(response) in (*TOKEN_ERRORS, "M_FORBIDDEN", "M_USER_DEACTIVATED") or http_status(response) in (
        401,
        403,
    ):
        return LoginFailed(f"{what} was refused ({describe_response(response)})")
    return RuntimeError(f"login failed: {describe_response(response)}")


class Refusal(StrEnum):
    """Why a send (or a join for one) was refused, as far as the endpoint must act on it."""

    #: slow down: the room's lane waits ``retry_after``
    RATE_LIMITED = "rate_limited"
    #: the access token is gone: log in again (a configured token cannot be renewed)
    LOGIN_GONE = "login_gone"
    #: not in the room, or no such room: join again next time, and tell someone
    NO_ACCESS = "no_access"
    #: a client error about this request; trying again later may work
    REFUSED = "refused"
    #: a gateway's 5xx or an unreadable answer: the event may have been stored all the same
    UNREADABLE = "unreadable"


def classify_refusal(response: Any) -> Refusal:
    code, status = errcode(response), http_status(response)
    if code == "M_LIMIT_EXCEEDED" or status == 429:
        return Refusal.RATE_LIMITED
    if code in TOKEN_ERRORS:
        return Refusal.LOGIN_GONE
    if code in ("M_FORBIDDEN", "M_NOT_FOUND") or status in (403, 404):
        return Refusal.NO_ACCESS
    if status is not None and 400 <= status < 500 and code:
        return Refusal.REFUSED
    return Refusal.UNREADABLE


def refusal_error(
    refusal: Refusal, response: Any, *, room: str, what: str, user_id: str, fixed_token: bool
) -> DeliveryError:
    """The refusal as the delivery workers understand it. ``fixed_token``: the bot logs in with a
    configured MATRIX_ACCESS_TOKEN, which the bridge cannot renew by itself."""
    detail = describe_response(response)
    match refusal:
        case Refusal.RATE_LIMITED:
            retry_after = (getattr(response, "retry_after_ms", None) or 1000) / 1000
            return RetryLater(f"Matrix rate limit in {room}", retry_after=retry_after)
        case Refusal.LOGIN_GONE:
            if fixed_token:
                return DestinationUnavailable(f"Matrix refused MATRIX_ACCESS_TOKEN ({detail})")
            return RetryLater(f"Matrix login expired ({detail}); logging in again")
        case Refusal.NO_ACCESS:
            return DestinationUnavailable(f"{what}: {detail}; invite {user_id} and check the room id")
        case Refusal.REFUSED:
            return RetryLater(f"Matrix refused: {detail}")
        case Refusal.UNREADABLE:
            # it may have landed: the txn id makes a resend harmless
            return RetryLater(f"Matrix answered {detail}", maybe_sent=True)

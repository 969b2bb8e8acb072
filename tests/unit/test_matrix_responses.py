"""``adapters/matrix/responses.py``: what nio's error answers mean, one table per question (no homeserver).

The answers are nio's own error classes, with the HTTP status set as nio sets it from the
homeserver's reply; ``None`` status is an answer nio could not read (a gateway's HTML page).
"""

from __future__ import annotations

from types import SimpleNamespace

import nio
import pytest

from adapters.matrix.responses import (
    LoginFailed,
    Refusal,
    classify_refusal,
    describe,
    describe_response,
    is_transient,
    login_error,
    refusal_error,
)
from bridge.errors import DestinationUnavailable, RetryLater


def answer(
    status: int | None, code: str | None = None, message: str = "", retry_after_ms: int | None = None
) -> nio.ErrorResponse:
    response = nio.RoomSendError(message, code, retry_after_ms)
    if status is not None:
        response.transport_response = SimpleNamespace(status=status)
    return response


# -- (status, errcode) → how the answer reads in a log line or a problem report -----------------

DESCRIBED: dict[str, tuple[nio.ErrorResponse, str]] = {
    "everything": (answer(403, "M_FORBIDDEN", "not in room"), "403 M_FORBIDDEN not in room"),
    "no status": (answer(None, "M_UNKNOWN_TOKEN", "gone"), "M_UNKNOWN_TOKEN gone"),
    "nothing readable": (answer(None), "no details"),
    "a gateway": (answer(502, None, "Bad Gateway"), "502 Bad Gateway"),
}


@pytest.mark.parametrize(("response", "expected"), DESCRIBED.values(), ids=list(DESCRIBED))
def test_describe_response(response: nio.ErrorResponse, expected: str) -> None:
    assert describe_response(response) == expected


def test_describe_an_exception_names_its_kind() -> None:
    assert describe(TimeoutError()) == "TimeoutError"
    assert describe(OSError("connection reset")) == "OSError: connection reset"


# -- an answer → is it about the request (False) or about the moment (True)? --------------------

TRANSIENT: dict[str, tuple[nio.ErrorResponse, bool]] = {
    "unreadable": (answer(None), True),
    "rate limit by status": (answer(429), True),
    "rate limit by errcode": (answer(400, "M_LIMIT_EXCEEDED"), True),
    "server error": (answer(500, "M_UNKNOWN"), True),
    "gateway": (answer(502), True),
    "forbidden": (answer(403, "M_FORBIDDEN"), False),
    "bad request": (answer(400, "M_INVALID_PARAM"), False),
}


@pytest.mark.parametrize(("response", "expected"), TRANSIENT.values(), ids=list(TRANSIENT))
def test_is_transient(response: nio.ErrorResponse, expected: bool) -> None:
    assert is_transient(response) is expected


# -- a refused login → wrong credentials (reported until fixed) or a bad moment (try again) ------

LOGINS: dict[str, tuple[nio.ErrorResponse, type[Exception]]] = {
    "unknown token": (answer(401, "M_UNKNOWN_TOKEN"), LoginFailed),
    "missing token": (answer(None, "M_MISSING_TOKEN"), LoginFailed),
    "wrong password": (answer(403, "M_FORBIDDEN"), LoginFailed),
    "deactivated": (answer(None, "M_USER_DEACTIVATED"), LoginFailed),
    "401 without errcode": (answer(401), LoginFailed),
    "server error": (answer(500, "M_UNKNOWN"), RuntimeError),
    "unreadable": (answer(None), RuntimeError),
    "rate limited": (answer(429, "M_LIMIT_EXCEEDED"), RuntimeError),
}


@pytest.mark.parametrize(("response", "kind"), LOGINS.values(), ids=list(LOGINS))
def test_login_error(response: nio.ErrorResponse, kind: type[Exception]) -> None:
    error = login_error("MATRIX_PASSWORD", response)
    assert type(error) is kind
    if kind is LoginFailed:
        assert str(error).startswith("MATRIX_PASSWORD was refused (")


# -- a refused send → what the endpoint does, and what the delivery workers are told -------------

REFUSALS: dict[str, tuple[nio.ErrorResponse, Refusal, type[Exception], float | None, bool]] = {
    # answer: refusal, error, retry_after, maybe_sent
    "rate limit with a hint": (answer(429, "M_LIMIT_EXCEEDED", "", 1500), Refusal.RATE_LIMITED, RetryLater, 1.5, False),
    "rate limit, no hint": (answer(429), Refusal.RATE_LIMITED, RetryLater, 1.0, False),
    "rate limit unreadable status": (answer(None, "M_LIMIT_EXCEEDED"), Refusal.RATE_LIMITED, RetryLater, 1.0, False),
    "token gone": (answer(401, "M_UNKNOWN_TOKEN"), Refusal.LOGIN_GONE, RetryLater, None, False),
    "forbidden": (answer(403, "M_FORBIDDEN"), Refusal.NO_ACCESS, DestinationUnavailable, None, False),
    "no such room": (answer(404, "M_NOT_FOUND"), Refusal.NO_ACCESS, DestinationUnavailable, None, False),
    "403 without errcode": (answer(403), Refusal.NO_ACCESS, DestinationUnavailable, None, False),
    "bad request": (answer(400, "M_TOO_LARGE"), Refusal.REFUSED, RetryLater, None, False),
    "400 without errcode": (answer(400), Refusal.UNREADABLE, RetryLater, None, True),
    "server error": (answer(500, "M_UNKNOWN"), Refusal.UNREADABLE, RetryLater, None, True),
    "unreadable": (answer(None), Refusal.UNREADABLE, RetryLater, None, True),
}


@pytest.mark.parametrize(
    ("response", "refusal", "kind", "retry_after", "maybe_sent"), REFUSALS.values(), ids=list(REFUSALS)
)
def test_refusals(
    response: nio.ErrorResponse, refusal: Refusal, kind: type[Exception], retry_after: float | None, maybe_sent: bool
) -> None:
    assert classify_refusal(response) is refusal
    error = refusal_error(
        refusal, response, room="!r:hs", what="cannot post in room !r:hs", user_id="@bot:hs", fixed_token=False
    )
    assert type(error) is kind
    assert (error.retry_after, error.maybe_sent) == (retry_after, maybe_sent)


def test_refusal_reasons_say_what_to_do() -> None:
    forbidden = answer(403, "M_FORBIDDEN", "not in room")
    error = refusal_error(
        Refusal.NO_ACCESS,
        forbidden,
        room="!r:hs",
        what="cannot post in room !r:hs",
        user_id="@bot:hs",
        fixed_token=False,
    )
    assert (
        error.reason == "cannot post in room !r:hs: 403 M_FORBIDDEN not in room; invite @bot:hs and check the room id"
    )
    limited = refusal_error(
        Refusal.RATE_LIMITED, answer(429), room="!r:hs", what="x", user_id="@bot:hs", fixed_token=False
    )
    assert limited.reason == "Matrix rate limit in !r:hs"


def test_a_configured_token_that_is_refused_pauses_the_room() -> None:
    """A password login can be redone by the bridge; a configured MATRIX_ACCESS_TOKEN cannot."""
    gone = answer(401, "M_UNKNOWN_TOKEN", "gone")
    renewable = refusal_error(Refusal.LOGIN_GONE, gone, room="!r:hs", what="x", user_id="@b:hs", fixed_token=False)
    fixed = refusal_error(Refusal.LOGIN_GONE, gone, room="!r:hs", what="x", user_id="@b:hs", fixed_token=True)
    assert isinstance(renewable, RetryLater) and "logging in again" in renewable.reason
    assert isinstance(fixed, DestinationUnavailable) and "MATRIX_ACCESS_TOKEN" in fixed.reason

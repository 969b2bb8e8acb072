"""``adapters/webhook/signature.py``: the header a receiver verifies (CONTRACT §9), and what it refuses."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.webhook.endpoint import body_of
from adapters.webhook.signature import sign, verify
from tests.unit import PROPERTY

SECRET = "whsec-0123456789abcdef"
BODY = b'{"event":"conversation.closed","conversation":{"id":"c1"}}'
T = 1_767_000_000


def test_the_header_is_t_and_v1_the_hmac_of_t_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, T, BODY) == f"t={T},v1={expected}"


# a case → (header, body, the receiver's clock): each one refused
REFUSED: dict[str, tuple[str, bytes, float]] = {
    "another body": (sign(SECRET, T, BODY), BODY + b" ", T),
    "another secret": (sign("another-secret-0123", T, BODY), BODY, T),
    "the time changed": (sign(SECRET, T, BODY).replace(f"t={T}", f"t={T + 1}"), BODY, T),
    "too old (a replay)": (sign(SECRET, T, BODY), BODY, T + 301),
    "from the future": (sign(SECRET, T, BODY), BODY, T - 301),
    "no v1": (f"t={T}", BODY, T),
    "no t": (sign(SECRET, T, BODY).split(",", 1)[1], BODY, T),
    "two t": (f"t={T}," + sign(SECRET, T, BODY), BODY, T),
    "t not a number": (sign(SECRET, T, BODY).replace(f"t={T}", "t=soon"), BODY, T),
    "empty": ("", BODY, T),
    "v1 in upper case hex": (sign(SECRET, T, BODY).upper().replace("T=", "t=").replace("V1=", "v1="), BODY, T),
}


@pytest.mark.parametrize(("header", "body", "now"), REFUSED.values(), ids=REFUSED.keys())
def test_refused(header: str, body: bytes, now: float) -> None:
    assert not verify(SECRET, header, body, now)


def test_accepted_within_the_tolerance_and_with_spaces_or_a_second_v1() -> None:
    header = sign(SECRET, T, BODY)
    assert verify(SECRET, header, BODY, T + 300)
    assert verify(SECRET, header.replace(",", ", "), BODY, T)
    # a receiver accepts any matching v1 (room for a secret rotation)
    assert verify(SECRET, header + ",v1=" + "0" * 64, BODY, T)


def test_the_body_is_the_same_bytes_for_the_same_event() -> None:
    row = {"id": "c1", "visitor_name": "Zoë", "agents": ["Alice"], "rating": None}
    assert body_of("conversation.closed", row) == body_of("conversation.closed", dict(row))
    assert body_of("conversation.closed", row).decode() == (
        '{"event":"conversation.closed","conversation":{"id":"c1","visitor_name":"Zoë","agents":["Alice"],"rating":null}}'
    )


@PROPERTY
@given(secret=st.text(min_size=1), timestamp=st.integers(min_value=0, max_value=2**40), body=st.binary())
def test_what_is_signed_verifies(secret: str, timestamp: int, body: bytes) -> None:
    assert verify(secret, sign(secret, timestamp, body), body, timestamp)

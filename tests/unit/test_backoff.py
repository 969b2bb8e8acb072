"""``bridge/deliveries.py``: how long a failed delivery waits, and which pending ones are due now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.deliveries import _due_prefix, backoff_seconds
from bridge.store.outbox import PendingDelivery
from tests.unit import PROPERTY


def drawn_from(attempts: int, base: float, cap: float) -> tuple[float, float]:
    """The range ``backoff_seconds`` draws its wait from (its jitter, made visible)."""
    with mock.patch("bridge.deliveries.random.uniform", lambda low, high: (low, high)):
        return backoff_seconds(attempts, base=base, cap=cap)  # type: ignore[return-value]


# (attempts, base, cap) → (shortest, longest) wait in seconds
BOUNDS: dict[tuple[int, float, float], tuple[float, float]] = {
    # a transient failure (base 0.5 s): doubles from half a second
    (1, 0.5, 300): (0.25, 0.5),
    (2, 0.5, 300): (0.5, 1),
    (3, 0.5, 300): (1, 2),
    (10, 0.5, 300): (128, 256),
    # … up to the cap, where it stays
    (11, 0.5, 300): (150, 300),
    (50, 0.5, 300): (150, 300),
    (1000, 0.5, 300): (150, 300),
    # no attempt yet (or a bad count) waits like the first
    (0, 0.5, 300): (0.25, 0.5),
    (-3, 0.5, 300): (0.25, 0.5),
    # a destination that is down (base 5 s) reaches the cap sooner
    (1, 5.0, 300): (2.5, 5),
    (6, 5.0, 300): (80, 160),
    (7, 5.0, 300): (150, 300),
    # a cap below the base wins at once
    (1, 5.0, 2): (1, 2),
}


@pytest.mark.parametrize(("case", "bounds"), BOUNDS.items(), ids=repr)
def test_backoff_bounds(case: tuple[int, float, float], bounds: tuple[float, float]) -> None:
    attempts, base, cap = case
    assert drawn_from(attempts, base, cap) == bounds
    low, high = bounds
    for _ in range(20):
        assert low <= backoff_seconds(attempts, base=base, cap=cap) <= high


# attempts up to 1024: beyond, base * 2 ** (attempts - 1) no longer converts to a float (reported)
attempts = st.integers(min_value=-5, max_value=1024)
bases = st.floats(min_value=0.01, max_value=60)
caps = st.floats(min_value=0.01, max_value=3600)


@PROPERTY
@given(attempts=attempts, base=bases, cap=caps)
def test_backoff_stays_in_the_upper_half_of_its_step_and_under_the_cap(attempts: int, base: float, cap: float) -> None:
    low, high = drawn_from(attempts, base, cap)
    assert high <= cap
    assert low == high / 2
    assert low <= backoff_seconds(attempts, base=base, cap=cap) <= high


@PROPERTY
@given(attempts=st.integers(min_value=1, max_value=1023), base=bases, cap=caps)
def test_backoff_doubles_with_each_attempt_until_the_cap(attempts: int, base: float, cap: float) -> None:
    _, this = drawn_from(attempts, base, cap)
    _, after = drawn_from(attempts + 1, base, cap)
    assert after == min(cap, 2 * this)


# --- which pending deliveries go in the next batch ----------------------------------------------

NOW = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)


def pending(*due_in_seconds: float) -> list[PendingDelivery]:
    """A lane's pending deliveries in order, each due that many seconds from now (≤ 0: due)."""
    return [
        PendingDelivery(
            id=i,
            conversation_id="c1",
            endpoint="slack",
            kind="message",
            message_id=f"m{i}",
            payload=None,
            attempts=0,
            in_doubt=False,
            next_attempt_at=NOW + timedelta(seconds=s),
        )
        for i, s in enumerate(due_in_seconds, start=1)
    ]


# a lane (due-in seconds, in order) → how many from its head go now
DUE_PREFIX: dict[str, tuple[tuple[float, ...], int]] = {
    "nothing pending": ((), 0),
    "all due": ((-60, -1, 0), 3),
    "due exactly now": ((0,), 1),
    "a microsecond early": ((1e-6,), 0),
    "the head waits: nothing after it goes (order kept)": ((30, -60, -60), 0),
    "due ones up to the first that waits": ((-60, -5, 10, -1), 2),
    "none due": ((5, 10), 0),
}


@pytest.mark.parametrize(("due_in", "count"), DUE_PREFIX.values(), ids=DUE_PREFIX.keys())
def test_due_prefix(due_in: tuple[float, ...], count: int) -> None:
    lane = pending(*due_in)
    assert _due_prefix(lane, NOW) == lane[:count]


@PROPERTY
@given(due_in=st.lists(st.integers(min_value=-100, max_value=100), max_size=10))
def test_due_prefix_is_the_longest_due_head(due_in: list[int]) -> None:
    lane = pending(*due_in)
    batch = _due_prefix(lane, NOW)
    assert batch == lane[: len(batch)]
    assert all(d.next_attempt_at <= NOW for d in batch)
    assert len(batch) == len(lane) or lane[len(batch)].next_attempt_at > NOW


@pytest.mark.parametrize("attempts", [1025, 2000, 10**6])
def test_backoff_stays_at_the_cap_however_long_a_destination_is_down(attempts: int) -> None:
    """Days of a destination down must not overflow the float (the delivery would stop being postponed)."""
    assert 150.0 <= backoff_seconds(attempts, base=0.5, cap=300.0) <= 300.0

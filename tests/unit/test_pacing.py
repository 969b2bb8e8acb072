"""The pace per destination (adapters/pacing.py): sends spaced as the team chat allows, first come first
served, and a queue behind one channel costs one timer, not one per waiting chat."""

from __future__ import annotations

import asyncio

import pytest

from adapters import pacing
from adapters.pacing import Pacer


class FakeTime:
    """A clock that ``asyncio.sleep`` (patched) moves forward: no real waiting, exact times."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0
        self._sleep = asyncio.sleep

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        await self._sleep(0)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(pacing.asyncio, "sleep", fake.sleep)
    return fake


@pytest.mark.parametrize(("per_second", "burst"), [(1.0, 1), (1.0, 3), (4.0, 2)])
async def test_many_chats_behind_one_channel_go_in_turn_at_the_pace(
    clock: FakeTime, per_second: float, burst: int
) -> None:
    pacer = Pacer(per_second, burst, clock=clock)
    sent: list[tuple[int, float]] = []

    async def send(i: int) -> None:
        await pacer.take("C1")
        sent.append((i, clock.now))

    await asyncio.gather(*(send(i) for i in range(50)))
    assert [i for i, _ in sent] == list(range(50))  # first come, first served
    times = [t for _, t in sent]
    assert times[:burst] == [0.0] * burst  # the burst at once, then one per interval
    assert all(b - a == pytest.approx(1 / per_second) for a, b in zip(times[burst - 1 :], times[burst:], strict=False))
    # one timer per send, not one per waiting chat per send (that would be ~50²/2)
    assert clock.sleeps <= 50


async def test_other_destinations_do_not_wait_in_the_line(clock: FakeTime) -> None:
    pacer = Pacer(1.0, 1, clock=clock)
    for _ in range(3):
        await pacer.take("C1")
    started = clock.now
    await pacer.take("C2")
    assert clock.now == started


async def test_a_block_holds_every_chat_of_the_destination(clock: FakeTime) -> None:
    pacer = Pacer(10.0, 5, clock=clock)
    pacer.block("C1", 30.0)
    await asyncio.gather(*(pacer.take("C1") for _ in range(3)))
    assert clock.now >= 30.0

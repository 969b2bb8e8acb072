"""Slack's ``app_rate_limited``: told in /readyz by the instance that heard it, and in doctor (another
process) through the endpoint's durable state, each for an hour after the last one."""

from __future__ import annotations

import json
import time

from adapters.slack.inbound import EventRateLimits


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class MemoryState:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        return self.values.get(key)

    async def put(self, key: str, value: str) -> None:
        self.values[key] = value


class BrokenState(MemoryState):
    async def get(self, key: str) -> str | None:
        raise ConnectionError("database down")

    async def put(self, key: str, value: str) -> None:
        raise ConnectionError("database down")


def _envelope(minute: int) -> dict[str, object]:
    return {"token": "t", "type": "app_rate_limited", "team_id": "T0TEAM", "minute_rate_limited": minute}


async def test_known_in_this_process_and_recorded_for_doctor_for_an_hour() -> None:
    clock, state = Clock(), MemoryState()
    service, doctor = EventRateLimits(clock, state), EventRateLimits(clock, state)
    assert service.known_problems() == [] and await doctor.recorded_problems() == []

    minute = int(clock.now) // 60 * 60
    await service.record(_envelope(minute))
    await service.record(_envelope(minute))
    assert service.count == 2
    [problem] = service.known_problems()
    assert "app_rate_limited" in problem and "2 times" in problem
    assert time.strftime("%H:%M", time.gmtime(minute)) in problem
    assert await doctor.recorded_problems() == [problem]

    clock.now += 3601
    assert service.known_problems() == [] and await doctor.recorded_problems() == []
    await service.record(_envelope(minute + 3600))  # an hour later: the count starts again for doctor
    assert json.loads(state.values["app_rate_limited"])["count"] == 1


async def test_a_database_that_fails_never_stops_the_acknowledgement() -> None:
    limits = EventRateLimits(Clock(), BrokenState())
    await limits.record(_envelope(0))
    assert limits.known_problems() and await limits.recorded_problems() == []


async def test_an_unreadable_record_counts_as_none() -> None:
    state = MemoryState()
    state.values["app_rate_limited"] = "{not json"
    assert await EventRateLimits(Clock(), state).recorded_problems() == []

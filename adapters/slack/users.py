"""Slack users as the visitor sees them: display name and photo, from ``users.info``, kept for an hour.

People rename themselves and change photos: an entry older than ``max_age`` is asked for again, and a
``user_change`` event (Slack's own word that a profile changed) replaces it at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from adapters.slack.failures import describe
from adapters.slack.session import SlackSession

log = logging.getLogger(__name__)

#: (display name, photo URL)
Person = tuple[str, str | None]


def person_of(user: Mapping[str, Any]) -> Person | None:
    """A ``users.info`` / ``user_change`` user as the visitor sees them; None without a usable name."""
    profile = user.get("profile") or {}
    name = profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name")
    if not isinstance(name, str) or not name:
        return None
    photo = profile.get("image_72")
    return name, photo if isinstance(photo, str) and photo else None


class UserDirectory:
    def __init__(
        self, session: SlackSession, *, clock: Callable[[], float] = time.time, max_age: float = 3600.0
    ) -> None:
        self._session = session
        self._clock = clock
        self._max_age = max_age
        self._people: dict[str, tuple[Person, float]] = {}  # user id → (person, when learnt)

    async def lookup(self, user_id: str) -> Person:
        """(display name, photo) for a Slack user; the id itself when Slack won't say."""
        known = self._people.get(user_id)
        if known is not None and self._clock() - known[1] <= self._max_age:
            return known[0]
        assert self._session.client is not None
        try:
            user = (await self._session.client.users_info(user=user_id))["user"]
        except Exception as exc:
            log.warning("Slack users.info %s failed: %s", user_id, describe(exc))
            # an old answer is better than the bare id; asked again next time
            return known[0] if known is not None else (user_id, None)
        person = person_of(user) or (user_id, None)
        self._people[user_id] = (person, self._clock())
        return person

    async def name(self, user_id: str) -> str:
        return (await self.lookup(user_id))[0]

    def changed(self, user: Mapping[str, Any]) -> None:
        """Slack's ``user_change``: the user's profile as it is now. Only people already seen are kept
        (every profile change in the workspace comes this way; most are nobody the bridge shows)."""
        user_id = user.get("id")
        person = person_of(user)
        if isinstance(user_id, str) and user_id in self._people and person is not None:
            self._people[user_id] = (person, self._clock())

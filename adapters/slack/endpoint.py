"""The Slack endpoint: one thread per conversation in a channel, agents answer in the thread.

Composed of parts, one per direction: the session (client, bolt app, Socket Mode or HTTP mode), the
inbound listeners (what Slack sends, as core events), the outbound sender (what the core asks, as posts)
and the desk (``/sitechat``, answered from the core's team desk). The pacer is shared with nothing
else: Slack limits posts per channel.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from aiohttp import web

from adapters.pacing import Pacer
from adapters.slack.desk import SlackDesk
from adapters.slack.downloads import SlackDownloads
from adapters.slack.inbound import SlackInbound
from adapters.slack.outbound import SlackOutbound
from adapters.slack.permalinks import Permalinks
from adapters.slack.session import SlackSession
from adapters.slack.uploads import SlackUploads
from adapters.slack.users import UserDirectory
from bridge.endpoint import Desk, Inbox, Outgoing, Sent, StateStore
from bridge.model import EndpointName


class SlackEndpoint:
    name = EndpointName("slack")
    #: pending lines of one conversation taken at once, to combine what waited behind the rate limit
    max_batch = 20

    def __init__(
        self,
        *,
        bot_token: str,
        api_url: str,
        signing_secret: str | None,
        app_token: str | None,
        timeout: float = 10.0,
        store_deadline: float = 2.0,
        posts_per_second: float = 1.0,
        clock: Callable[[], float] = time.time,
        state: StateStore | None = None,
        note_prefix: str = "//",
    ) -> None:
        """``posts_per_second``: per channel (``SLACK_POSTS_PER_SECOND``); ``clock``: wall-clock seconds,
        for what expires (cached user names, a rate-limit report), replaceable in tests; ``state``: the
        endpoint's durable state, where what doctor should know (Slack's ``app_rate_limited``) is kept,
        and the conversations' files (without it files neither go up nor come down); ``note_prefix``: an
        agent's message that starts so is a note, whose files are never fetched."""
        self.session = SlackSession(
            bot_token=bot_token, api_url=api_url, signing_secret=signing_secret, app_token=app_token, timeout=timeout
        )
        self.pacer = Pacer(per_second=posts_per_second)
        self.users = UserDirectory(self.session, clock=clock)
        self.inbound = SlackInbound(
            self.name,
            self.session,
            self.users,
            store_deadline=store_deadline,
            clock=clock,
            state=state,
            downloads=SlackDownloads(self.session, state.files) if state is not None else None,
            note_prefix=note_prefix,
        )
        uploads = SlackUploads(self.session, self.pacer, state, clock) if state is not None else None
        permalinks = Permalinks(self.session)  # one cache for the roots and /sitechat open
        self.outbound = SlackOutbound(self.session, self.pacer, permalinks, uploads)
        self.desk = SlackDesk(self.name, self.session, self.users, permalinks)

    def use_desk(self, desk: Desk) -> None:
        """``/sitechat``'s answers come from the core's desk (the composition root hands it in)."""
        self.desk.use(desk)

    async def start(self, inbox: Inbox) -> None:
        app = await self.session.open()
        self.desk.attach(app)  # before the inbound listeners' catch-alls
        self.inbound.attach(app, inbox)
        await self.session.connect()

    async def stop(self) -> None:
        await self.desk.stop()
        await self.inbound.stop()
        await self.session.close()

    def routes(self) -> list[web.RouteDef]:
        return self.session.routes()

    async def ready(self, destination: str) -> None:
        await self.outbound.ready(destination)

    async def deliver(self, batch: Sequence[Outgoing]) -> Sequence[Sent]:
        return await self.outbound.deliver(batch)

    async def check(self, destinations: Sequence[str]) -> list[str]:
        return await self.session.check(destinations) + await self.inbound.rate_limits.recorded_problems()

    async def describe(self, destinations: Sequence[str]) -> list[str]:
        return []

    def known_problems(self) -> list[str]:
        return self.session.known_problems()

    def warnings(self) -> list[str]:
        # Slack shedding events is the workspace's load, not this instance's health: every instance
        # would go "not ready" at once, and a load balancer would then have nowhere to send visitors
        return self.inbound.known_problems()

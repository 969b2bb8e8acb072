"""The connection to Slack: the Web API client, the bolt app, ``auth.test``, Socket Mode or HTTP mode."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.failures import describe

log = logging.getLogger(__name__)


class SlackSession:
    def __init__(
        self, *, bot_token: str, api_url: str, signing_secret: str | None, app_token: str | None, timeout: float
    ) -> None:
        self._bot_token = bot_token
        self._api_url = api_url
        self._signing_secret = signing_secret
        self._app_token = app_token
        self._timeout = timeout
        self._http: aiohttp.ClientSession | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self.client: AsyncWebClient | None = None
        self.app: AsyncApp | None = None
        self.bot_user_id: str | None = None
        self.bot_id: str | None = None
        self._auth_problem: str | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        """The one HTTP session of the client, for what is no Web API call (file bytes up and down)."""
        assert self._http is not None, "used before open()"
        return self._http

    @property
    def api_url(self) -> str:
        return self._api_url

    @property
    def timeout(self) -> float:
        return self._timeout

    def bearer(self) -> dict[str, str]:
        """The bot token as a header, for Slack's file host (``url_private``), which takes no Web API call."""
        return {"Authorization": f"Bearer {self._bot_token}"}

    def _new_client(self, http: aiohttp.ClientSession) -> AsyncWebClient:
        # one shared aiohttp session (without it every call opens its own); retry_handlers=[]:
        # slack-sdk would resend a post after a dropped connection, doubling it
        return AsyncWebClient(
            token=self._bot_token,
            base_url=self._api_url,
            session=http,
            timeout=int(self._timeout),
            retry_handlers=[],
        )

    async def open(self) -> AsyncApp:
        """The client and the bolt app (listeners are added by the caller), then who we are on Slack."""
        self._http = aiohttp.ClientSession()
        self.client = self._new_client(self._http)
        self.app = AsyncApp(
            client=self.client,
            signing_secret=self._signing_secret or "",
            request_verification_enabled=self._signing_secret is not None,
            # store the event before Slack gets its 200, so an ack always means "kept"
            process_before_response=True,
            raise_error_for_unhandled_request=False,
        )
        try:
            auth = await self.client.auth_test()
            self.bot_user_id, self.bot_id = auth.get("user_id"), auth.get("bot_id")
        except Exception as exc:  # start anyway: deliveries wait and /readyz tells what is wrong
            self._auth_problem = f"Slack: auth.test failed at start ({describe(exc)}); check SLACK_BOT_TOKEN"
            log.error("%s", self._auth_problem)
        return self.app

    async def connect(self) -> None:
        """Socket Mode: connect once the listeners are in place (HTTP mode has nothing to connect)."""
        if self._app_token:
            assert self.app is not None
            self._socket = AsyncSocketModeHandler(self.app, self._app_token)
            await self._socket.connect_async()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
        if self._http is not None:
            await self._http.close()

    async def http_handler(self, request: web.Request) -> web.StreamResponse:
        """``POST /slack/events``: events, Block Kit actions and the slash command, signature-checked by bolt."""
        assert self.app is not None
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if not (timestamp.isascii() and timestamp.isdigit()):
            # bolt's verifier would int() it and raise: a forged request must get 401, not 503
            return web.json_response({"error": "invalid_signature"}, status=401)
        bolt_response = await self.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    def routes(self) -> list[web.RouteDef]:
        """In HTTP mode Slack posts to ``/slack/events`` on the widget server; Socket Mode serves nothing."""
        return [] if self._app_token else [web.post("/slack/events", self.http_handler)]

    def known_problems(self) -> list[str]:
        return [self._auth_problem] if self._auth_problem else []

    async def check(self, destinations: Sequence[str]) -> list[str]:
        """Token and channels, without starting (doctor must not take events the service should get)."""
        async with aiohttp.ClientSession() as http:
            client = self._new_client(http)
            try:
                await client.auth_test()
            except Exception as exc:
                return [f"Slack: auth.test failed ({describe(exc)}); check SLACK_BOT_TOKEN"]
            problems = []
            for channel in destinations:
                try:
                    info = await client.conversations_info(channel=channel)
                    if not info["channel"].get("is_member", True):
                        problems.append(f"Slack: the app is not in channel {channel}; invite it with /invite @app")
                except Exception as exc:
                    problems.append(f"Slack: channel {channel} cannot be read ({describe(exc)}); check the id")
            return problems

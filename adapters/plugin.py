"""What an adapter package hands the composition root: its endpoint, and the HTTP routes it serves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from aiohttp import web

from bridge.endpoint import Endpoint


@dataclass(frozen=True)
class Plugin:
    endpoint: Endpoint
    #: mounted on the widget server as they are (Slack's ``POST /slack/events`` in HTTP mode)
    routes: Sequence[web.RouteDef] = field(default_factory=tuple)

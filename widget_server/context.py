"""Everything the widget server's handlers need, handed in by the composition root."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import IPv4Network, IPv6Address, IPv6Network

from aiohttp import web
from prometheus_client import CollectorRegistry

from bridge.conversations import Conversations
from bridge.live import LiveHub
from config.settings import SiteConfig
from widget_server.ratelimit import SlidingWindow


@dataclass
class WidgetContext:
    conversations: Conversations
    live: LiveHub
    sites: Mapping[str, SiteConfig]
    public_url: str
    #: endpoints that are running (a site is online only if one of its destinations is)
    endpoints: frozenset[str]
    conversations_per_hour: int = 20
    messages_per_minute: int = 30
    sockets_per_address: int = 20
    #: proxies whose X-Forwarded-For is believed, parsed once with the settings (SITECHAT_TRUSTED_PROXIES)
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    #: transcripts by email per conversation and per client address per hour (the mail goes to any address)
    transcripts_per_conversation: int = 3
    transcripts_per_address: int = 10
    #: page views per conversation per minute (each one refreshes the thread's root in the team chat)
    page_views_per_minute: int = 20
    #: frames one socket may send per 10 s (typing, pings, pages, messages) before it is told to slow down
    frames_per_10_seconds: int = 100
    #: the socket's ping interval; a client that misses a pong for half of it is disconnected
    heartbeat_seconds: float = 30.0
    #: how long a new socket may take to send its hello
    hello_timeout_seconds: float = 5.0
    #: returns problems (empty = ready): database, team chats, paused destinations
    readiness: Callable[[], Awaitable[list[str]]] | None = None
    #: worth knowing, not a reason to be taken out of rotation (listed by /readyz, which stays 200)
    warnings: Callable[[], list[str]] | None = None
    #: shutting down (SIGTERM): not ready, and new live sockets are sent to another instance
    draining: bool = False
    #: mails a transcript; None = email is not configured
    send_transcript: Callable[[str, str], Awaitable[None]] | None = None
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    new_conversations: SlidingWindow = field(init=False)
    new_messages: SlidingWindow = field(init=False)
    transcripts: SlidingWindow = field(init=False)
    transcripts_from: SlidingWindow = field(init=False)
    page_views: SlidingWindow = field(init=False)
    sockets: dict[str, int] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        self.new_conversations = SlidingWindow(self.conversations_per_hour, 3600)
        self.new_messages = SlidingWindow(self.messages_per_minute, 60)
        self.transcripts = SlidingWindow(self.transcripts_per_conversation, 3600)
        self.transcripts_from = SlidingWindow(self.transcripts_per_address, 3600)
        self.page_views = SlidingWindow(self.page_views_per_minute, 60)

    @property
    def own_origin(self) -> str:
        scheme, _, rest = self.public_url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}".lower()

    def origin_allowed(self, site_id: str, origin: str | None) -> bool:
        """No Origin (not a browser) is allowed: the token still guards every conversation."""
        if origin is None:
            return True
        origin = origin.lower().rstrip("/")
        site = self.sites.get(site_id)
        return origin == self.own_origin or (site is not None and origin in site.origins)

    def origin_known(self, origin: str | None) -> bool:
        """Allowed by some site: checked before any work, when the site is not yet known."""
        if origin is None:
            return True
        return any(self.origin_allowed(site_id, origin) for site_id in self.sites) or origin.lower() == self.own_origin

    def client_address(self, request: web.Request) -> str:
        """The peer, or the first untrusted address in X-Forwarded-For when the peer is a trusted proxy."""
        peer = request.remote or "unknown"
        if not self.trusted_proxies or not _in(peer, self.trusted_proxies):
            return peer
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
        for hop in reversed(hops):
            if not _in(hop, self.trusted_proxies):
                return hop
        return peer

    def site_online(self, site_id: str) -> bool:
        site = self.sites[site_id]
        if site.office_hours is not None and not site.office_hours.is_open(self.clock()):
            return False
        routes = [site.destinations(None), *(site.destinations(t) for t in site.topics)]
        return any(endpoint in self.endpoints for r in routes for endpoint in r)


CONTEXT = web.AppKey("sitechat_widget_context", WidgetContext)


def _in(address: str, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:  # an IPv4 peer seen through an IPv6 socket
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)

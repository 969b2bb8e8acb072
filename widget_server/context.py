"""Everything the widget server's handlers need, handed in by the composition root."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.conversations import Conversations
from bridge.files import Files
from bridge.live import LiveHub
from bridge.model import Attachment, Conversation
from bridge.store.limits import CountedUse
from config.settings import SiteConfig
from widget_server.attachment_links import AttachmentLinks
from widget_server.metrics import SitechatMetrics
from widget_server.ratelimit import NEW_CONVERSATIONS, NEW_MESSAGES, Limits, LocalLimits, SlidingWindow
from widget_server.visitor_lookup import VisitorLookup


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
    #: trades a follow-up mail's resume ticket (site, ticket) for (conversation, new token); None = no follow-ups
    resume_chat: Callable[[str, str], Awaitable[tuple[Conversation, str] | None]] | None = None
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    #: the bridge's series in ``registry`` (None: /metrics answers the registry as it is)
    metrics: SitechatMetrics | None = None
    #: the contract's limits (new conversations, messages, open sockets), counted across every instance
    #: on the database when the runtime hands in the store's; in this process only by default
    limits: Limits = field(default_factory=LocalLimits)
    #: the conversations' files (uploads, downloads); None: files are off (a test without them)
    files: Files | None = None
    #: signs the widget's links to files; made at start-up (its key is in the database)
    links: AttachmentLinks | None = None
    #: SITECHAT_ATTACHMENT_LINK_HOURS
    link_hours: float = 24.0
    # The windows below are counted in this process only. With N instances that is exact for
    # ``frames`` (each socket's own, in _Session: a socket lives on one instance), but not for these:
    # - transcripts (per conversation, per address) are HTTP requests that a load balancer spreads,
    #   so up to N times as many mails get through (3·N per conversation, 10·N per address, an hour);
    # - page views come over the conversation's sockets, and a visitor may hold several (tabs, up to
    #   ``sockets_per_address``), on different instances: up to min(N, its sockets) times the limit.
    # Neither reaches a contract limit; moving them to ``limits`` costs one transaction per use.
    transcripts: SlidingWindow = field(init=False)
    transcripts_from: SlidingWindow = field(init=False)
    page_views: SlidingWindow = field(init=False)
    #: this instance's open sockets per client address (the limit on them is counted in ``limits``)
    sockets: dict[str, int] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: a GeoLite2/GeoIP2 City database (SITECHAT_GEOIP_DB): where visitors are, on the thread's root
    geoip_db: Path | None = None
    _visitor_lookup: VisitorLookup | None = field(default=None, init=False, repr=False)

    def visitor_lookup(self) -> VisitorLookup:
        """Reads user agents and (with ``geoip_db``) client addresses; made at first use."""
        if self._visitor_lookup is None or self._visitor_lookup.made_for != self.geoip_db:
            self._visitor_lookup = VisitorLookup(self.geoip_db)
        return self._visitor_lookup

    def __post_init__(self) -> None:
        self.transcripts = SlidingWindow(self.transcripts_per_conversation, 3600)
        self.transcripts_from = SlidingWindow(self.transcripts_per_address, 3600)
        self.page_views = SlidingWindow(self.page_views_per_minute, 60)

    async def new_conversation_wait(self, address: str) -> float | None:
        """Count a new conversation (or offline message) from ``address``: None, or seconds to wait."""
        return await self.limits.hit(NEW_CONVERSATIONS, address, self.conversations_per_hour, 3600, _wall_clock())

    async def new_message_wait(self, conversation_id: str, conn: AsyncConnection | None = None) -> float | None:
        """Count a visitor message in the conversation: None, or the seconds to wait; ``conn``: the
        transaction that stores the message."""
        return await self.limits.hit(NEW_MESSAGES, conversation_id, self.messages_per_minute, 60, _wall_clock(), conn)

    def new_message_use(self, conversation_id: str) -> CountedUse | None:
        """A visitor message for the store to count with the message itself; None: count it with
        ``new_message_wait`` (limits counted in this process)."""
        return self.limits.counted_use(NEW_MESSAGES, conversation_id, self.messages_per_minute, 60, _wall_clock())

    async def take_socket_place(self, address: str) -> int | None:
        """One of the address's open-socket places, or None when all are taken."""
        return await self.limits.open_socket(address, self.sockets_per_address, _wall_clock())

    def file_link(self, file: Attachment) -> str:
        """The widget's signed link to a file; files are shown by name only until ``links`` is made."""
        return self.links.url(file) if self.links is not None else ""

    async def start_files(self) -> None:
        """Make the links' signer once the database is up (the key is kept there for every instance)."""
        if self.files is not None and self.links is None:
            self.links = AttachmentLinks(self.public_url, await self.files.link_key(), self.link_hours)

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


def _wall_clock() -> datetime:
    # not ``clock`` (which a site's office hours are read by, and tests may stop): the shared windows
    # are compared with other instances' hits, so this is the real time
    return datetime.now(UTC)


@functools.lru_cache(maxsize=4096)  # a proxy's own address comes with every request: parse it once
def _in(address: str, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:  # an IPv4 peer seen through an IPv6 socket
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)

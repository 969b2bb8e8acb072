"""``/metrics``: the bridge's Prometheus series (CONTRACT §9).

Counters and histograms are fed by the core at the moment things happen (``bridge.observe.Observer``);
they count what *this instance* did, so a dashboard sums them over instances. The gauges of state —
open conversations, the outbox backlog — are read from the database by two small indexed queries,
at most every few seconds however often Prometheus scrapes, and are the same on every instance.
``sitechat_endpoint_up`` and ``sitechat_widget_sockets`` are this instance's own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bridge.store.database import Database
from bridge.store.stats import open_conversations_by_site, pending_deliveries_by_endpoint
from config.settings import SiteConfig

log = logging.getLogger(__name__)

#: seconds from the visitor's first message to the first agent reply
FIRST_RESPONSE_BUCKETS = (5, 10, 15, 30, 45, 60, 90, 120, 180, 300, 600, 1800, 3600)
#: seconds from a delivery's acceptance to its post (Slack paces a channel at about one post a second)
DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800)
#: the label value of a conversation with no topic (Prometheus reads an empty value as "no such label")
NO_TOPIC = ""


@dataclass
class _State:
    open_by_site: dict[str, int] = field(default_factory=dict)
    pending_by_endpoint: dict[str, int] = field(default_factory=dict)
    read_at: float | None = None
    sockets: int = 0


class SitechatMetrics:
    """The Prometheus side of ``bridge.observe.Observer``, plus the gauges of state."""

    def __init__(
        self,
        registry: CollectorRegistry,
        db: Database,
        sites: Mapping[str, SiteConfig],
        endpoints: Collection[str],
        *,
        endpoint_up: Callable[[str], bool] = lambda _name: True,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.sites = sites
        self.endpoints = sorted(endpoints)
        self.endpoint_up = endpoint_up
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._state = _State()
        self._reading = asyncio.Lock()
        self.started_total = Counter(
            "sitechat_conversations_started", "Chats visitors started", ["site", "topic"], registry=registry
        )
        self.messages_total = Counter(
            "sitechat_messages",
            "Messages stored for the team or for the visitor",
            ["direction", "endpoint"],
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "sitechat_delivery_seconds",
            "From a delivery's acceptance to its post",
            ["endpoint"],
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )
        self.first_response_seconds = Histogram(
            "sitechat_first_response_seconds",
            "From a visitor's first message to the first agent reply",
            ["site"],
            buckets=FIRST_RESPONSE_BUCKETS,
            registry=registry,
        )
        self.ratings_total = Counter("sitechat_ratings", "Ratings visitors gave", ["site", "score"], registry=registry)
        registry.register(_StateCollector(self))
        self._zeroes()

    def _zeroes(self) -> None:
        """Every known series from the start, at 0: a rate() over a fresh instance is 0, not nothing."""
        for site_id, site in self.sites.items():
            for topic in (NO_TOPIC, *site.topics):
                self.started_total.labels(site_id, topic)
            self.first_response_seconds.labels(site_id)
            for score in range(1, 6):
                self.ratings_total.labels(site_id, str(score))
        # a conversation's lines go to the team chats sites route to (not mail, not a webhook)
        team_chats = {e for site in self.sites.values() for t in (None, *site.topics) for e in site.destinations(t)}
        for endpoint in self.endpoints:
            self.delivery_seconds.labels(endpoint)
            if endpoint in team_chats:
                self.messages_total.labels("to_team", endpoint)
                self.messages_total.labels("to_visitor", endpoint)

    # -- bridge.observe.Observer ---------------------------------------------------------------

    def conversation_started(self, site: str, topic: str | None) -> None:
        self.started_total.labels(site, topic or NO_TOPIC).inc()

    def message_to_team(self, endpoint: str) -> None:
        self.messages_total.labels("to_team", endpoint).inc()

    def message_to_visitor(self, endpoint: str) -> None:
        self.messages_total.labels("to_visitor", endpoint).inc()

    def delivered(self, endpoint: str, seconds: float) -> None:
        self.delivery_seconds.labels(endpoint).observe(max(0.0, seconds))

    def first_response(self, site: str, seconds: float) -> None:
        self.first_response_seconds.labels(site).observe(seconds)

    def rated(self, site: str, score: int) -> None:
        self.ratings_total.labels(site, str(score)).inc()

    # -- gauges of state -----------------------------------------------------------------------

    async def refresh(self, *, sockets: int) -> None:
        """Before a scrape: re-read the database's counts if they are older than ``cache_seconds``."""
        self._state.sockets = sockets
        async with self._reading:
            read_at = self._state.read_at
            if read_at is not None and self.clock() - read_at < self.cache_seconds:
                return
            try:
                async with asyncio.timeout(2.0), self.db.read() as conn:
                    self._state.open_by_site = await open_conversations_by_site(conn)
                    self._state.pending_by_endpoint = await pending_deliveries_by_endpoint(conn)
            except Exception as exc:  # /metrics still answers (with the last counts) while the database is away
                log.warning("metrics: cannot read the counts (%s); serving the last ones", type(exc).__name__)
            self._state.read_at = self.clock()

    def collect_state(self) -> Iterator[Metric]:
        state = self._state
        opened = GaugeMetricFamily("sitechat_conversations_open", "Conversations open now", labels=["site"])
        for site in sorted({*self.sites, *state.open_by_site}):
            opened.add_metric([site], state.open_by_site.get(site, 0))
        pending = GaugeMetricFamily("sitechat_outbox_pending", "Deliveries not yet posted", labels=["endpoint"])
        for endpoint in sorted({*self.endpoints, *state.pending_by_endpoint}):
            pending.add_metric([endpoint], state.pending_by_endpoint.get(endpoint, 0))
        up = GaugeMetricFamily(
            "sitechat_endpoint_up",
            "1 when this instance reaches the endpoint and no destination is paused",
            labels=["endpoint"],
        )
        for endpoint in self.endpoints:
            up.add_metric([endpoint], 1 if self.endpoint_up(endpoint) else 0)
        sockets = GaugeMetricFamily("sitechat_widget_sockets", "Widget live sockets open on this instance")
        sockets.add_metric([], state.sockets)
        yield from (opened, pending, up, sockets)


class _StateCollector(Collector):
    def __init__(self, metrics: SitechatMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self.metrics.collect_state()

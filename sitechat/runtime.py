"""The composition root: the only place that knows which adapters exist and wires them to the core."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

import adapters.email
import adapters.matrix
import adapters.slack
import adapters.webhook
from adapters.plugin import Plugin
from bridge.conversations import Conversations, utcnow
from bridge.deliveries import DeliveryWorker
from bridge.endpoint import Endpoint, ServesDesk, ShowsTyping, StateStore
from bridge.files import FileRules, Files
from bridge.follow_up import FollowUps, MailKeys, resume
from bridge.lifecycle import Timers
from bridge.live import LiveHub
from bridge.mail_in import MailReplies, ReceivesMail
from bridge.reminders import Reminders
from bridge.retention import Retention
from bridge.store.database import Database
from bridge.store.instances import Heartbeat
from bridge.store.limits import SharedLimits
from bridge.store.notify import Notifier
from bridge.store.state import KeyValueState
from bridge.team_desk import TeamDesk
from config.settings import Settings
from sitechat.insight.posting import ReportSchedule
from widget_server.app import create_app
from widget_server.context import WidgetContext
from widget_server.metrics import SitechatMetrics
from widget_server.ratelimit import LocalLimits
from widget_server.socket import close_open_sockets

log = logging.getLogger("sitechat")


#: every adapter there is, by endpoint name: each builds its endpoint from its own part of the settings
#: (``None`` when that part is off), or nothing
ADAPTERS: dict[str, Callable[[Settings, StateStore], Plugin | None]] = {
    "slack": lambda settings, state: adapters.slack.build(settings.slack, state, note_prefix=settings.note_prefix),
    "matrix": lambda settings, state: adapters.matrix.build(
        settings.matrix, state, rooms=settings.routes_to("matrix"), note_prefix=settings.note_prefix
    ),
    "email": lambda settings, state: adapters.email.build(settings.email, state),
    "webhook": lambda settings, state: adapters.webhook.build(settings.webhook, state),
}


def build_plugins(settings: Settings, db: Database, files: Files | None = None) -> list[Plugin]:
    """The endpoints the settings turn on, each with its own durable state namespace."""
    files = files or build_files(settings, db)
    built = (build(settings, KeyValueState(db, name, utcnow, files)) for name, build in ADAPTERS.items())
    return [plugin for plugin in built if plugin is not None]


def build_files(settings: Settings, db: Database) -> Files:
    """The conversations' files, with the limits the settings give (SITECHAT_UPLOAD_*)."""
    rules = FileRules(int(settings.widget.upload_max_mb * 1024 * 1024), settings.widget.upload_types)
    return Files(db, utcnow, rules)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    live: LiveHub
    endpoints: dict[str, Endpoint]
    worker: DeliveryWorker
    conversations: Conversations
    timers: Timers
    app: web.Application
    notifier: Notifier
    widget: WidgetContext
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    #: erases closed conversations after SITECHAT_RETENTION_DAYS; None keeps them
    retention: Retention | None = None
    #: posts the weekly report (SITECHAT_REPORT_SCHEDULE); None: not scheduled
    report_schedule: ReportSchedule | None = None

    async def readiness(self) -> list[str]:
        if self.widget.draining:
            return ["shutting down: send visitors to another instance"]
        problems: list[str] = []
        try:
            async with asyncio.timeout(2.0):
                await self.db.ping()
        except Exception as exc:
            problems.append(f"database: unreachable ({type(exc).__name__})")
        for endpoint in self.endpoints.values():
            problems.extend(endpoint.known_problems())
        problems.extend(f"{key}: {reason}" for key, reason in self.worker.problems.items())
        if self.notifier.problem:
            problems.append(f"instances: {self.notifier.problem}")
        return problems

    def warnings(self) -> list[str]:
        return [warning for endpoint in self.endpoints.values() for warning in endpoint.warnings()]

    async def drain(self, seconds: float) -> None:
        """A rolling restart's first half (SIGTERM): not ready any more, no new sockets, the open ones
        told to reconnect (elsewhere), and the deliveries being sent finished — within ``seconds``."""
        self.widget.draining = True
        await close_open_sockets(self.app)
        await self.worker.drain(seconds)


def build_runtime(settings: Settings, *, plugins: Sequence[Plugin] | None = None) -> Runtime:
    db = Database(settings.database_url)
    live = LiveHub()
    notifier = Notifier(db)
    files = build_files(settings, db)
    plugins = build_plugins(settings, db, files) if plugins is None else plugins
    endpoints: dict[str, Endpoint] = {p.endpoint.name: p.endpoint for p in plugins}
    registry = CollectorRegistry()
    metrics = SitechatMetrics(registry, db, settings.sites, endpoints)
    worker = DeliveryWorker(db, endpoints, settings.sites, observer=metrics)
    metrics.endpoint_up = lambda name: endpoint_up(name, endpoints[name], worker)
    conversations = Conversations(
        db,
        settings.sites,
        endpoints.keys(),
        live,
        wake_deliveries=worker.wake,
        note_prefix=settings.note_prefix,
        snippets=settings.snippets,
        announce=notifier.announce if notifier.enabled else None,
    )
    conversations.core.observer = metrics
    # the visitor's typing goes straight to the team chats that can show it (never through the outbox)
    conversations.typists = {name: e for name, e in endpoints.items() if isinstance(e, ShowsTyping)}
    conversations.core.start_lanes = worker.start_lanes  # a commit starts the lanes it filled, no rescan
    first_response = timedelta(seconds=settings.first_response_alert_seconds)
    reminders = Reminders(
        conversations.core, first=first_response, most=settings.reminder_max, mention=settings.reminder_mention
    )
    # follow-up mail to visitors who left, and their replies (CONTRACT §8): with email only
    keys = MailKeys(conversations.core)
    inbound_domain = settings.email.inbound_domain if settings.email else None
    follow_ups = None
    if "email" in endpoints and settings.follow_up_minutes > 0:
        after = timedelta(minutes=settings.follow_up_minutes)
        follow_ups = FollowUps(conversations.core, keys, after=after, inbound_domain=inbound_domain)
    if inbound_domain is not None:
        replies = MailReplies(conversations.core, keys, inbound_domain, conversations.post_visitor_message)
        for endpoint in endpoints.values():
            if isinstance(endpoint, ReceivesMail):
                endpoint.use_mail_inbox(replies)
    timers = Timers(
        conversations,
        inactivity=timedelta(minutes=settings.inactivity_close_minutes),
        first_response=first_response,
        reminders=reminders,
        files=files,
        follow_ups=follow_ups,
    )
    desk = TeamDesk(conversations.core)
    for endpoint in endpoints.values():
        if isinstance(endpoint, ServesDesk):
            endpoint.use_desk(desk)  # /sitechat in Slack, !sitechat in Matrix
    widget = settings.widget
    ctx = WidgetContext(
        conversations=conversations,
        live=live,
        sites=settings.sites,
        public_url=widget.public_url,
        endpoints=frozenset(endpoints),
        conversations_per_hour=widget.conversations_per_hour,
        messages_per_minute=widget.messages_per_minute,
        sockets_per_address=widget.sockets_per_address,
        trusted_proxies=widget.trusted_proxies,
        geoip_db=widget.geoip_db,
        # counted in the database, so N instances do not make them N times; SQLite is one instance, whose
        # own count is exact and costs no write transaction per message
        limits=LocalLimits() if db.is_sqlite else SharedLimits(db),
        send_transcript=conversations.request_transcript if "email" in endpoints else None,
        resume_chat=partial(resume, conversations.core, keys) if follow_ups else None,
        registry=registry,
        metrics=metrics,
        files=files,
        link_hours=widget.attachment_link_hours,
    )
    app = create_app(ctx, [route for p in plugins for route in p.routes])
    runtime = Runtime(settings, db, live, endpoints, worker, conversations, timers, app, notifier, ctx)
    if settings.retention_days is not None:
        runtime.retention = Retention(db, settings.retention_days, wake_deliveries=worker.wake)
    if settings.report_schedule is not None:
        runtime.report_schedule = ReportSchedule(files, settings, settings.report_schedule, clock=utcnow)
    ctx.readiness = runtime.readiness
    ctx.warnings = runtime.warnings
    app.cleanup_ctx.append(lambda _app: _background(runtime))
    return runtime


def endpoint_up(name: str, endpoint: Endpoint, worker: DeliveryWorker) -> bool:
    """Up (``sitechat_endpoint_up`` 1) unless /readyz would name it: a problem the endpoint knows of
    (login refused, rooms it cannot join) or one of its destinations paused by the delivery worker."""
    return not endpoint.known_problems() and not any(key.startswith(f"{name} ") for key in worker.problems)


async def _background(rt: Runtime) -> AsyncIterator[None]:
    """Start what runs beside the web server; stop it all, in reverse, on shutdown."""
    rt.db.claim_single_instance()
    await rt.db.migrate()
    started: list[Endpoint] = []
    try:
        for endpoint in rt.endpoints.values():
            await endpoint.start(rt.conversations)
            started.append(endpoint)
        await rt.notifier.listen(rt.live.publish, rt.worker.wake)
        await rt.widget.start_files()
        heartbeat = Heartbeat(rt.db, utcnow, lambda: rt.notifier.listening)
        try:
            # signed in before the first socket: the others take the socket places of an instance
            # without a row for left over by a dead one
            await heartbeat.beat()
        except Exception as exc:  # its loop tries again; a place or two may be freed too early meanwhile
            log.warning("heartbeat: could not sign in yet (%s)", type(exc).__name__)
        rt.tasks = [
            asyncio.create_task(rt.worker.run(), name="deliveries"),
            asyncio.create_task(rt.timers.run(), name="timers"),
            asyncio.create_task(heartbeat.run(), name="heartbeat"),
            *([asyncio.create_task(rt.retention.run(), name="retention")] if rt.retention else []),
            *([asyncio.create_task(rt.report_schedule.run(), name="report")] if rt.report_schedule else []),
        ]
        yield
    finally:
        for task in rt.tasks:
            task.cancel()
        for task in rt.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await rt.notifier.stop()
        for endpoint in reversed(started):
            try:
                await endpoint.stop()
            except Exception:
                log.exception("stopping %s", endpoint.name)
        await rt.db.close()


async def serve(runtime: Runtime, host: str, port: int, *, settle: bool = False) -> web.AppRunner:
    """Start everything and listen. ``settle``: this process serves until it ends (``sitechat run``, not a
    test that starts many servers): what start-up made (modules, the SDKs' tables, compiled statements,
    some 150,000 objects) lives as long as it does, so it is moved out of the cyclic collector's way once,
    before the first request, and a full collection walks only what the chats made. Walking it all paused
    the loop 70–100 ms now and then (measured on the bench), which every reply in flight waited. In a
    process that starts many servers their leftovers would be kept for good."""
    runner = web.AppRunner(runtime.app, access_log=None, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    if settle:
        gc.collect()
        gc.freeze()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner

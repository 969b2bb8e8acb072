"""The widget HTTP API (CONTRACT §3)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge import greeting
from bridge.conversations import ConversationClosed, ForeignAttachment, LimitReached, WrongState
from bridge.model import Conversation, PageView, Status, Visitor
from bridge.team_desk import site_away
from config.sites import LANGUAGES
from widget_server import answers, schemas
from widget_server.context import CONTEXT, WidgetContext
from widget_server.responses import ORIGIN_REFUSED, ApiError, answer, parse_json, validation_message
from widget_server.static_files import serve_precompressed
from widget_server.visitor_lookup import MAX_USER_AGENT, visitor_language

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
routes = web.RouteTableDef()
#: the widget's language packs, built by ``make widget`` beside widget.js
TEXTS = Path(__file__).resolve().parent / "static" / "texts"

_AFTER = re.compile(r"[0-9]{1,10}")
#: what conversation ids and tokens are made of (``secrets.token_urlsafe``)
_URLSAFE = re.compile(r"[A-Za-z0-9_-]{1,200}")


def forbidden() -> ApiError:
    """A new instance each time: re-raising one shared exception would chain every raise's traceback
    (and the frames it holds) onto it, so each refused token would keep memory forever."""
    return ApiError(403, "forbidden", "this token does not give access to that conversation")


async def read_body(request: web.Request, model: type[M]) -> M:
    if request.content_length is not None and request.content_length > request.client_max_size:
        raise ApiError(413, "too_large", f"the request body is larger than {request.client_max_size // 1024} KiB")
    raw = await request.read()
    try:
        return model.model_validate(parse_json(raw))
    except ValidationError as exc:
        raise ApiError(422, "invalid", validation_message(exc)) from None


def validated(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid", validation_message(exc)) from None


def site_or_404(ctx: WidgetContext, request: web.Request) -> str:
    site_id = request.match_info["site"].lower()
    if site_id not in ctx.sites:
        raise ApiError(404, "unknown_site", f"there is no site {site_id!r}")
    return site_id


def bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    # a header can carry any bytes (non-UTF-8 ones arrive as surrogates): such a token is not one of ours
    if scheme.lower() != "bearer" or not _URLSAFE.fullmatch(token):
        raise ApiError(401, "unauthorized", "send the conversation's token as 'Authorization: Bearer …'")
    return token


async def authorized(request: web.Request) -> Conversation:
    """The conversation in the path, if the bearer token is its own and the origin is its site's."""
    ctx = request.app[CONTEXT]
    token = bearer(request)
    cid = request.match_info["id"]
    # an id we never make (a NUL, a surrogate, 5000 characters) is not looked up: PostgreSQL would refuse some
    conv = await ctx.conversations.authorize(cid, token) if _URLSAFE.fullmatch(cid) else None
    if conv is None:
        raise forbidden()  # the same answer for a wrong token and an unknown id: ids cannot be probed
    if not ctx.origin_allowed(conv.site_id, request.headers.get("Origin")):
        raise ApiError(403, ORIGIN_REFUSED, "this site does not allow requests from your origin")
    return conv


def rate_limited(wait: float | None, what: str) -> None:
    if wait is not None:
        raise too_many(wait, what)


def too_many(wait: float, what: str) -> ApiError:
    return ApiError(429, "rate_limited", f"too many {what}; try again in {wait:.0f} s", {"Retry-After": f"{wait:.0f}"})


def verified_identity(ctx: WidgetContext, site_id: str, visitor: schemas.VisitorIn) -> str | None:
    """The visitor's id when its HMAC matches the site's identity secret; otherwise anonymous."""
    secret = ctx.sites[site_id].identity_secret
    if secret is None or not visitor.id or not visitor.hash:
        return None
    expected = hmac.new(secret.get_secret_value().encode(), visitor.id.encode(), hashlib.sha256).hexdigest()
    # bytes: compare_digest refuses str with non-ASCII characters, and a hash can hold anything
    return visitor.id if hmac.compare_digest(expected.encode(), visitor.hash.lower().encode()) else None


@routes.get("/api/v1/sites/{site}")
async def site_info(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    site_id = site_or_404(ctx, request)
    site = ctx.sites[site_id]
    language = site.language or visitor_language(None, request.headers.get("Accept-Language")) or "en"
    invitation = (
        answers.Invitation(after_seconds=site.invite_after_seconds, pages=site.invite_pages)
        if site.invite_after_seconds
        else None
    )
    return answer(
        answers.SiteInfo(
            site=site_id,
            name=site.name,
            online=ctx.site_online(site_id) and not await set_away(ctx, site_id),
            greeting=greeting.greeting(site, language),
            topics=[answers.Topic(id=tid, label=t.label) for tid, t in site.topics.items()],
            office_hours=str(site.office_hours) if site.office_hours else None,
            language=site.language,
            greetings={lang: greeting.greeting(site, lang) for lang in LANGUAGES},
            invitation=invitation,
        )
    )


async def set_away(ctx: WidgetContext, site_id: str) -> bool:
    """Whether an agent set the site away (``/sitechat away``); a database that does not answer in time
    leaves the site as its office hours say (the chat still works without that answer)."""
    try:
        async with asyncio.timeout(1.0):
            return await site_away(ctx.conversations.db, site_id)
    except Exception as exc:
        log.warning("site %s: away state unreadable (%s); shown by its office hours", site_id, type(exc).__name__)
        return False


@routes.get("/widget-texts/{language}.json")
async def widget_texts(request: web.Request) -> web.StreamResponse:
    """A language's pack of widget texts (``make widget`` builds them from the catalogue): public and the
    same for every site, so any page may fetch it."""
    language = request.match_info["language"]
    if language not in LANGUAGES or language == "en":
        raise ApiError(404, "unknown_language", f"the widget speaks {', '.join(LANGUAGES)} (English is built in)")
    response = await serve_precompressed(
        request,
        TEXTS / f"{language}.json",
        content_type="application/json",
        cache_control="public, max-age=300",
        missing="the widget's language packs are not built: run `make widget`",
    )
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@routes.post("/api/v1/sites/{site}/conversations")
async def start_conversation(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    site_id = site_or_404(ctx, request)
    body = await read_body(request, schemas.StartConversation)
    site = ctx.sites[site_id]
    topic = body.topic.lower() if body.topic else None
    if topic is not None and topic not in site.topics:
        raise ApiError(422, "invalid", f"topic: unknown topic {body.topic!r}; choose one of {sorted(site.topics)}")
    if not ctx.conversations.reachable_destinations(site, topic):
        if topic is None and site.topics:
            raise ApiError(422, "invalid", f"topic: choose one of {sorted(site.topics)}")
        raise ApiError(409, "offline", "nobody can be reached for this site right now; leave an offline message")
    address = ctx.client_address(request)
    rate_limited(await ctx.new_conversation_wait(address), "new conversations from your address")
    page = PageView(body.page.url, body.page.title, body.page.referrer) if body.page else None
    visitor = Visitor(
        body.visitor.name, body.visitor.email, verified_identity(ctx, site_id, body.visitor), body.visitor.key
    )
    new = await ctx.conversations.start(
        site_id,
        visitor=visitor,
        topic=topic,
        page=page,
        locale=body.locale,
        timezone=body.timezone,
        client_address=address,
        **(await visitor_context(ctx, request, body, address)),
    )
    started = answers.ConversationStarted(conversation=answers.Conversation.of(new.conversation), token=new.token)
    return answer(started, 201)


@routes.post("/api/v1/sites/{site}/conversations/resume")
async def resume_conversation(request: web.Request) -> web.Response:
    """A follow-up mail's link: its ticket traded for a fresh token of the conversation (the old one stops
    working), so the widget on the site's page goes on with the chat (``bridge/mail_links.py``)."""
    ctx = request.app[CONTEXT]
    site_id = site_or_404(ctx, request)
    body = await read_body(request, schemas.ResumeConversation)
    resumed = await ctx.resume_chat(site_id, body.ticket) if ctx.resume_chat is not None else None
    if resumed is None:
        raise ApiError(403, "link_expired", "this link has expired or was used already; start a new chat")
    conv, token = resumed
    return answer(answers.ConversationStarted(conversation=answers.Conversation.of(conv), token=token))


async def visitor_context(
    ctx: WidgetContext, request: web.Request, body: schemas.StartConversation, address: str
) -> dict[str, Any]:
    """What the thread's root shows of the visitor besides what they sent (CONTRACT §10), and their language."""
    user_agent = header_text(request.headers.get("User-Agent"), MAX_USER_AGENT)
    client = await asyncio.to_thread(ctx.visitor_lookup().client_facts, user_agent, address)
    language = visitor_language(body.locale, request.headers.get("Accept-Language"))
    return {"user_agent": user_agent, "client": client, "language": language}


def header_text(value: str | None, limit: int) -> str | None:
    """A header as text the store takes: valid UTF-8 (a header may carry any bytes), no control characters."""
    if not value:
        return None
    text = value.encode("utf-8", "replace").decode("utf-8")
    return "".join(ch for ch in text if ch.isprintable())[:limit] or None


async def accept_message(
    ctx: WidgetContext, conv: Conversation, data: schemas.PostMessage
) -> tuple[dict[str, Any], bool]:
    """Shared by HTTP and the socket: the same dedupe, limits and state checks. (message JSON, True if new)"""
    message, created = await accept(ctx, conv, data)
    return message.dump(), created


async def accept(ctx: WidgetContext, conv: Conversation, data: schemas.PostMessage) -> tuple[answers.Message, bool]:
    async def admit(conn: AsyncConnection) -> None:
        rate_limited(await ctx.new_message_wait(conv.id, conn), "messages in this conversation")

    # a resend is answered with what was stored, even after close, and costs no rate-limit slot: the
    # store looks for it first, in the transaction that stores a new one (and counts the use there too,
    # when the limits are the database's)
    use = ctx.new_message_use(conv.id)
    try:
        message, created = await ctx.conversations.post_visitor_message(
            conv.id,
            data.client_msg_id,
            data.text or "",
            data.attachment_ids,
            admit=admit if use is None else None,
            count=use,
        )
    except LimitReached as exc:
        raise too_many(exc.wait, "messages in this conversation") from None
    except ConversationClosed:
        raise ApiError(409, "closed", "this conversation is closed; start a new chat") from None
    except ForeignAttachment:
        raise ApiError(403, "forbidden", "an attachment id is not a file uploaded to this conversation") from None
    return answers.Message.of(message, ctx.file_link), created


@routes.post("/api/v1/conversations/{id}/messages")
async def post_message(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    conv = await authorized(request)
    body = await read_body(request, schemas.PostMessage)
    message, created = await accept(ctx, conv, body)
    return answer(answers.MessageAnswer(message=message), 201 if created else 200)


@routes.get("/api/v1/conversations/{id}/messages")
async def list_messages(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    conv = await authorized(request)
    raw_after = request.query.get("after", "0")
    # ASCII digits only: str.isdigit() would also take "²", which int() refuses
    if not _AFTER.fullmatch(raw_after) or int(raw_after) > schemas.MAX_SEQ:
        raise ApiError(
            400, "invalid", f"after: a whole number up to {schemas.MAX_SEQ} (the last seq you have), e.g. ?after=0"
        )
    messages = await ctx.conversations.messages_after(conv.id, int(raw_after))
    return answer(
        answers.MessageList(status=conv.status, messages=[answers.Message.of(m, ctx.file_link) for m in messages])
    )


@routes.post("/api/v1/conversations/{id}/close")
async def close_conversation(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    conv = await authorized(request)
    await ctx.conversations.close(conv.id)
    return answer(answers.Closed(status=Status.CLOSED))


@routes.post("/api/v1/conversations/{id}/rating")
async def rate(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    conv = await authorized(request)
    body = await read_body(request, schemas.Rating)
    if conv.status is not Status.CLOSED:
        raise ApiError(409, "not_closed", "a rating is given after the conversation is closed")
    try:
        await ctx.conversations.rate(conv.id, body.score, (body.comment or "").strip() or None)
    except WrongState:
        raise ApiError(409, "already_rated", "this conversation has been rated already") from None
    return answer(answers.Rated(score=body.score, comment=body.comment))


@routes.post("/api/v1/conversations/{id}/transcript")
async def transcript(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    conv = await authorized(request)
    body = await read_body(request, schemas.TranscriptRequest)
    if ctx.send_transcript is None:
        raise ApiError(503, "email_unavailable", "email is not set up on this server (SITECHAT_SMTP_URL)")
    # the mail goes to any address the visitor names: without a limit this would be a spam relay
    rate_limited(ctx.transcripts.hit(conv.id), "transcripts for this conversation")
    rate_limited(ctx.transcripts_from.hit(ctx.client_address(request)), "transcripts from your address")
    await ctx.send_transcript(conv.id, body.email)
    return answer(answers.Accepted(status="queued"), 202)


@routes.post("/api/v1/sites/{site}/offline-messages")
async def offline_message(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    site_id = site_or_404(ctx, request)
    body = await read_body(request, schemas.OfflineMessage)
    rate_limited(await ctx.new_conversation_wait(ctx.client_address(request)), "messages from your address")
    await ctx.conversations.offline_message(site_id, name=body.name, email=body.email, text=body.text)
    return answer(answers.Accepted(status="received"), 202)

"""Cross-cutting HTTP behaviour: JSON errors (never a traceback), CORS for allowed origins, security headers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.exc import DBAPIError, OperationalError

from widget_server.context import CONTEXT
from widget_server.responses import ORIGIN_REFUSED, ApiError, OriginRefusal, error

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CORS_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
    "Access-Control-Expose-Headers": "Retry-After",
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "cross-origin",
    # pages set their own policy; anything else (JSON, the script, metrics) is never a document to run or frame
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
}
#: team-chat webhooks (Slack posts a 40,000-character message twice: as text and as blocks) may be larger
#: than what the public widget API takes; both are refused beyond their limit with 413
TEAM_CHAT_MAX_BODY = 1024 * 1024


def _site_of(request: web.Request) -> str | None:
    return request.match_info.get("site", "").lower() or None


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPRequestEntityTooLarge:
        return error(413, "too_large", f"the request body is larger than {request.client_max_size // 1024} KiB")
    except web.HTTPException as exc:
        if exc.status >= 400:
            kept = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
            return error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason, headers=kept)
        raise
    except (OperationalError, DBAPIError, ConnectionError, TimeoutError):
        log.exception("%s %s: the database is unavailable", request.method, request.path)
        return error(503, "unavailable", "the service is briefly unavailable; try again", {"Retry-After": "2"})
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error(500, "internal", "something went wrong on our side; nothing you sent was lost")


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse foreign origins before any work; CORS headers go to allowed origins only."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    ctx = request.app[CONTEXT]
    origin = request.headers.get("Origin")
    site = _site_of(request)
    if site is not None and site not in ctx.sites:
        return await handler(request)  # the handler's 404, with no CORS headers
    allowed = ctx.origin_allowed(site, origin) if site else ctx.origin_known(origin)
    if not allowed:
        return error(403, ORIGIN_REFUSED, "this site does not allow requests from your origin")
    if request.method == "OPTIONS":
        response: web.StreamResponse = web.Response(status=204)
    else:
        response = await handler(request)
    # an origin the conversation's site does not allow is refused after the token is checked: no CORS for it either
    if origin is not None and not response.prepared and not isinstance(response, OriginRefusal):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        response.headers.update(CORS_HEADERS)
    return response


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
    return response


@web.middleware
async def body_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The widget API keeps the application's 64 KiB; signed team-chat webhooks get more room."""
    if request.method == "POST" and not request.path.startswith("/api/"):
        request = request.clone(client_max_size=TEAM_CHAT_MAX_BODY)
    return await handler(request)

"""The aiohttp application: widget API and socket, static widget, demo page, health and metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from widget_server import answers, api, files_api, socket
from widget_server.context import CONTEXT, WidgetContext
from widget_server.middleware import body_limits, cors, errors, security_headers
from widget_server.openapi import OPENAPI, build_openapi
from widget_server.static_files import serve_precompressed

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 64 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page_csp(ctx: WidgetContext) -> str:
    ws = ctx.own_origin.replace("http", "ws", 1)
    return (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; "
        f"connect-src 'self' {ws}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


async def widget_js(request: web.Request) -> web.StreamResponse:
    return await serve_precompressed(
        request,
        STATIC / "widget.js",
        content_type="application/javascript",
        cache_control="public, max-age=300",
        missing="the widget is not built: run `make widget`",
    )


async def demo_page(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    site_id, site = next(iter(ctx.sites.items()))
    template = (STATIC / "demo.html").read_text(encoding="utf-8") if (STATIC / "demo.html").is_file() else _FALLBACK
    html = (
        template.replace("{{SITE_ID}}", _attr(site_id))
        .replace("{{SITE_NAME}}", _attr(site.name))
        .replace("{{PUBLIC_URL}}", _attr(ctx.public_url))
    )
    return web.Response(
        text=html,
        content_type="text/html",
        headers={"Content-Security-Policy": page_csp(ctx), "X-Frame-Options": "DENY"},
    )


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI], headers={"Cache-Control": "public, max-age=300"})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    problems = await ctx.readiness() if ctx.readiness else []
    warnings = ctx.warnings() if ctx.warnings else []
    body = answers.Readiness(status="not_ready" if problems else "ready", problems=problems, warnings=warnings)
    return web.json_response(body.dump(), status=503 if problems else 200)


async def metrics(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    if ctx.metrics is not None:
        await ctx.metrics.refresh(sockets=len(request.app[socket.OPEN_SOCKETS]))
    return web.Response(body=generate_latest(ctx.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(ctx: WidgetContext, extra_routes: Iterable[web.RouteDef] = ()) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[body_limits, security_headers, cors, errors])
    app[CONTEXT] = ctx
    app[OPENAPI] = build_openapi(ctx)
    app[socket.OPEN_SOCKETS] = set()
    app.on_shutdown.append(socket.close_open_sockets)
    app.add_routes(api.routes)
    app.add_routes(files_api.routes)
    app.add_routes(socket.routes)
    app.add_routes(
        [
            web.get("/widget.js", widget_js),
            web.get("/demo", demo_page),
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            web.get("/metrics", metrics),
            web.get("/api/v1/openapi.json", openapi_document),
            web.route("OPTIONS", "/api/{tail:.*}", _preflight),
        ]
    )
    app.add_routes(list(extra_routes))
    return app


async def _preflight(request: web.Request) -> web.Response:
    return web.Response(status=204)  # the cors middleware answers (or refuses) it


def _attr(value: str) -> str:
    from html import escape

    return escape(value, quote=True)


_FALLBACK = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{SITE_NAME}}</title></head>
<body><h1>{{SITE_NAME}}</h1>
<script src="{{PUBLIC_URL}}/widget.js" data-site="{{SITE_ID}}" async></script></body></html>"""

"""Every route the widget server serves is in its OpenAPI document, and everything the document names is
served: the document is built by hand from the models (``widget_server.openapi``), the routes are
registered elsewhere (``widget_server.app``, ``api``, ``socket``), and this keeps the two in step.

The app is the widget server's own (``create_app`` without extra routes): the team chats' webhooks that
the composition root mounts beside it (Slack's ``/slack/…``) are the adapters' and not the widget API."""

from __future__ import annotations

from aiohttp import web

from widget_server.app import create_app
from widget_server.context import WidgetContext
from widget_server.openapi import OPENAPI

METHODS = {"get", "post", "put", "patch", "delete", "options", "head"}
#: served but not an operation of the document, and why
UNDOCUMENTED = {
    # CORS preflights: the cors middleware answers them for every /api path; OpenAPI has no place for them
    ("options", "/api/{tail}"),
}


def widget_app() -> web.Application:
    ctx = WidgetContext(
        conversations=None,  # type: ignore[arg-type]  # building the app and its document touches neither
        live=None,  # type: ignore[arg-type]
        sites={},
        public_url="https://chat.acme.example",
        endpoints=frozenset(),
    )
    return create_app(ctx)


def served(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route; the HEAD aiohttp adds beside each GET is the GET's."""
    routes = {(route.method.lower(), route.resource.canonical) for route in app.router.routes() if route.resource}
    return {(method, path) for method, path in routes if not (method == "head" and ("get", path) in routes)}


def documented(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every operation in the document the app serves at /api/v1/openapi.json."""
    return {(method, path) for path, item in app[OPENAPI]["paths"].items() for method in item if method in METHODS}


def test_every_route_is_documented_and_every_documented_path_served() -> None:
    app = widget_app()
    routes, doc = served(app), documented(app)
    assert routes - UNDOCUMENTED - doc == set(), "served but missing from widget_server/openapi.py"
    assert doc - routes == set(), "in the OpenAPI document but not served"
    assert UNDOCUMENTED <= routes, "an exception for a route that is gone: drop it from UNDOCUMENTED"


def test_the_widget_texts_are_documented_as_the_packs_are() -> None:
    item = widget_app()[OPENAPI]["paths"]["/widget-texts/{language}.json"]
    answer = item["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/WidgetTexts"}
    assert item["parameters"][0]["schema"]["enum"] == ["de", "fr", "es"]  # English is built into widget.js


def test_the_rule_would_catch_an_undocumented_route() -> None:
    async def secret(request: web.Request) -> web.Response:
        return web.Response()

    app = widget_app()
    app.router.add_get("/api/v1/secret", secret)
    assert ("get", "/api/v1/secret") in served(app) - UNDOCUMENTED - documented(app)

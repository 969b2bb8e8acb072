"""The widget API as an OpenAPI 3.1 document (CONTRACT §3), served at ``GET /api/v1/openapi.json``.

Request bodies come from the pydantic models that validate them (``widget_server.schemas``), so the
document cannot drift from what the server accepts; answers and errors are written out here, in the
shapes ``widget_server.responses`` produces.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from widget_server import schemas
from widget_server.context import WidgetContext

JSON = dict[str, Any]
OPENAPI = web.AppKey("sitechat_openapi", dict)
REF = "#/components/schemas/{model}"

#: request bodies, by the name the document gives them
REQUEST_MODELS: dict[str, type[BaseModel]] = {
    "StartConversation": schemas.StartConversation,
    "PostMessage": schemas.PostMessage,
    "Rating": schemas.Rating,
    "TranscriptRequest": schemas.TranscriptRequest,
    "OfflineMessage": schemas.OfflineMessage,
}


def _ref(name: str) -> JSON:
    return {"$ref": REF.format(model=name)}


def _string(**extra: Any) -> JSON:
    return {"type": "string", **extra}


def _object(properties: JSON, required: list[str] | None = None, **extra: Any) -> JSON:
    return {"type": "object", "properties": properties, "required": required or list(properties), **extra}


TIMESTAMP = _string(format="date-time", description="ISO 8601, UTC")
STATUS = _string(enum=["open", "closed"])

RESPONSE_SCHEMAS: JSON = {
    "Error": _object(
        {
            "error": _object(
                {
                    "code": _string(description="stable, machine-readable: bad_json, invalid, forbidden, …"),
                    "message": _string(description="what was wrong, in plain words"),
                }
            )
        }
    ),
    "Topic": _object({"id": _string(), "label": _string()}),
    "SiteInfo": _object(
        {
            "site": _string(),
            "name": _string(),
            "online": {"type": "boolean", "description": "someone can answer now (else offer the offline form)"},
            "greeting": _string(),
            "topics": {"type": "array", "items": _ref("Topic")},
            "office_hours": {"type": ["string", "null"], "description": "e.g. Mon-Fri 09:00-17:00 Europe/Berlin"},
        }
    ),
    "Conversation": _object({"id": _string(minLength=22), "status": STATUS, "created_at": TIMESTAMP}),
    "ConversationStarted": _object(
        {
            "conversation": _ref("Conversation"),
            "token": _string(
                minLength=43,
                description="the visitor's secret for this one conversation: send it as a bearer token "
                "(and in the socket's hello frame), never in a URL",
            ),
        }
    ),
    "Author": _object(
        {
            "role": _string(enum=["visitor", "agent", "system"]),
            "name": _string(),
            "avatar_url": _string(format="uri"),
        },
        required=["role", "name"],
    ),
    "Attachment": _object(
        {
            "name": _string(),
            "size": {"type": "integer", "minimum": 0},
            "content_type": _string(),
            "url": _string(format="uri"),
        }
    ),
    "Message": _object(
        {
            "id": _string(),
            "seq": {"type": "integer", "minimum": 1, "description": "1, 2, 3… within the conversation, no gaps"},
            "conversation_id": _string(),
            "author": _ref("Author"),
            "text": _string(description="plain text: show it as text, never as HTML"),
            "created_at": TIMESTAMP,
            "client_msg_id": _string(),
            "edited_at": TIMESTAMP,
            "deleted": {"type": "boolean"},
            "attachments": {"type": "array", "items": _ref("Attachment")},
        },
        required=["id", "seq", "conversation_id", "author", "text", "created_at"],
    ),
    "MessageAnswer": _object({"message": _ref("Message")}),
    "MessageList": _object({"status": STATUS, "messages": {"type": "array", "items": _ref("Message")}}),
    "Closed": _object({"status": _string(const="closed")}),
    "Rated": _object(
        {"score": {"type": "integer", "minimum": 1, "maximum": 5}, "comment": {"type": ["string", "null"]}}
    ),
    "Accepted": _object({"status": _string(enum=["queued", "received"])}),
    "Health": _object({"status": _string()}),
    "Readiness": _object(
        {"status": _string(enum=["ready", "not_ready"]), "problems": {"type": "array", "items": _string()}}
    ),
}

ERRORS: dict[str, str] = {
    "400": "The body is not a JSON object, or is nested too deeply; or a query parameter is malformed.",
    "401": "No bearer token was sent.",
    "403": "The token does not belong to the conversation in the path — the same answer when no such "
    "conversation exists, so ids cannot be probed — or the site does not allow the request's Origin.",
    "404": "There is no such site.",
    "405": "The path does not take this method.",
    "409": "The conversation is not in the state this needs.",
    "413": "The request body is larger than 64 KiB.",
    "422": "The body is JSON but not what this operation takes: the message says which field and why.",
    "429": "Too many requests: wait the number of seconds in Retry-After.",
    "503": "A service this needs is unavailable; try again later.",
}


def _error(status: str) -> JSON:
    answer: JSON = {"description": ERRORS[status], "content": {"application/json": {"schema": _ref("Error")}}}
    if status == "429":
        answer["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}, "required": True}}
    if status == "405":
        answer["headers"] = {"Allow": {"schema": {"type": "string"}}}
    return answer


def _json(description: str, schema: str) -> JSON:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _operation(
    summary: str,
    answers: dict[str, JSON],
    errors: list[str],
    *,
    body: str | None = None,
    bearer: bool = False,
    parameters: list[JSON] | None = None,
    operation_id: str,
) -> JSON:
    op: JSON = {"summary": summary, "operationId": operation_id}
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    op["responses"] = {**answers, **{status: _error(status) for status in errors}}
    if bearer:
        op["security"] = [{"conversationToken": []}]
    else:
        op["security"] = []
    return op


SITE = {"name": "site", "in": "path", "required": True, "schema": _string(minLength=1, maxLength=64)}
CONVERSATION = {"name": "id", "in": "path", "required": True, "schema": _string(minLength=1, maxLength=64)}
AFTER = {
    "name": "after",
    "in": "query",
    "required": False,
    "description": "the last seq the client has; only later messages are returned",
    "schema": {"type": "integer", "minimum": 0, "maximum": schemas.MAX_SEQ, "default": 0},
}
COMMON = ["403", "405", "429"]  # every /api path: foreign origins, wrong methods, the socket/address limits


def _paths() -> JSON:
    conv = [CONVERSATION]
    return {
        "/api/v1/sites/{site}": {
            "parameters": [SITE],
            "get": _operation(
                "What the widget needs to show for a site",
                {"200": _json("The site", "SiteInfo")},
                ["404", "403", "405"],
                operation_id="getSite",
            ),
        },
        "/api/v1/sites/{site}/conversations": {
            "parameters": [SITE],
            "post": _operation(
                "Start a conversation; the answer holds its token",
                {"201": _json("Started", "ConversationStarted")},
                ["400", "404", "409", "413", "422", *COMMON],
                body="StartConversation",
                operation_id="startConversation",
            ),
        },
        "/api/v1/sites/{site}/offline-messages": {
            "parameters": [SITE],
            "post": _operation(
                "Leave a message when nobody is online",
                {"202": _json("Received: it is posted to the site's team chat", "Accepted")},
                ["400", "404", "409", "413", "422", *COMMON],
                body="OfflineMessage",
                operation_id="leaveOfflineMessage",
            ),
        },
        "/api/v1/conversations/{id}/messages": {
            "parameters": conv,
            "get": _operation(
                "The conversation's messages after a seq, in seq order",
                {"200": _json("The messages", "MessageList")},
                ["400", "401", *COMMON],
                bearer=True,
                parameters=[AFTER],
                operation_id="listMessages",
            ),
            "post": _operation(
                "Send a visitor message (a resend with the same client_msg_id answers 200 with the stored one)",
                {"201": _json("Stored", "MessageAnswer"), "200": _json("Stored before", "MessageAnswer")},
                ["400", "401", "409", "413", "422", *COMMON],
                body="PostMessage",
                bearer=True,
                operation_id="postMessage",
            ),
        },
        "/api/v1/conversations/{id}/close": {
            "parameters": conv,
            "post": _operation(
                "Close the conversation (again: 200, nothing repeated)",
                {"200": _json("Closed", "Closed")},
                ["401", *COMMON],
                bearer=True,
                operation_id="closeConversation",
            ),
        },
        "/api/v1/conversations/{id}/rating": {
            "parameters": conv,
            "post": _operation(
                "Rate a closed conversation, once",
                {"200": _json("Rated", "Rated")},
                ["400", "401", "409", "413", "422", *COMMON],
                body="Rating",
                bearer=True,
                operation_id="rateConversation",
            ),
        },
        "/api/v1/conversations/{id}/transcript": {
            "parameters": conv,
            "post": _operation(
                "Mail the conversation to an address (a few per conversation and address per hour)",
                {"202": _json("Queued", "Accepted")},
                ["400", "401", "413", "422", "503", *COMMON],
                body="TranscriptRequest",
                bearer=True,
                operation_id="requestTranscript",
            ),
        },
        "/api/v1/conversations/{id}/ws": {
            "parameters": conv,
            "get": {
                "summary": "The live channel: a WebSocket (CONTRACT §4)",
                "operationId": "liveChannel",
                "description": 'Upgrade to a WebSocket, then send {"type": "hello", "token", "after"} within '
                "5 s. Frames are JSON text of at most 64 KiB (larger: close 1009); the server pings every 30 s "
                "and drops a client that does not answer.",
                "security": [],
                "responses": {
                    "101": {"description": "Switching to the WebSocket protocol"},
                    **{status: _error(status) for status in ["400", *COMMON]},
                },
            },
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **{status: _error(status) for status in ["403", "405"]},
                },
            }
        },
        "/widget.js": {"get": _static("The embeddable widget", "application/javascript", "widgetScript")},
        "/demo": {"get": _static("A demo page that embeds the widget for the first site", "text/html", "demoPage")},
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "operationId": "healthz",
                "security": [],
                "responses": {"200": _json("Alive", "Health"), "405": _error("405")},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: the database and the team chats are reachable",
                "operationId": "readyz",
                "security": [],
                "responses": {
                    "200": _json("Ready", "Readiness"),
                    "503": _json("Not ready: the problems say why", "Readiness"),
                    "405": _error("405"),
                },
            }
        },
        "/metrics": {"get": _static("Prometheus metrics", "text/plain", "metrics")},
    }


def _static(summary: str, media_type: str, operation_id: str) -> JSON:
    return {
        "summary": summary,
        "operationId": operation_id,
        "security": [],
        "responses": {"200": {"description": summary, "content": {media_type: {"schema": {"type": "string"}}}}},
    }


def build_openapi(ctx: WidgetContext, version: str = "1") -> JSON:
    """The document for this server: its public URL, and the request schemas of ``widget_server.schemas``."""
    _, defs = models_json_schema([(model, "validation") for model in REQUEST_MODELS.values()], ref_template=REF)
    request_schemas: JSON = defs.get("$defs", {})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sitechat widget API",
            "version": version,
            "description": "What a website's chat widget calls. JSON in UTF-8; errors are "
            '{"error": {"code", "message"}}; request bodies at most 64 KiB; every /api request from a '
            "browser must come from an origin the site allows.",
        },
        "servers": [{"url": ctx.public_url}],
        "paths": _paths(),
        "components": {
            "schemas": {**request_schemas, **RESPONSE_SCHEMAS},
            "securitySchemes": {
                "conversationToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the token from POST /api/v1/sites/{site}/conversations",
                }
            },
        },
    }

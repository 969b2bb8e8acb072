"""The widget API as an OpenAPI 3.1 document (CONTRACT §3), served at ``GET /api/v1/openapi.json``.

Nothing in it is written twice: request bodies are the pydantic models that validate them
(``widget_server.schemas``, validation mode) and answers the models the handlers serialise
(``widget_server.answers``, serialization mode), all under ``components/schemas`` by class name.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from config.sites import LANGUAGES
from widget_server import answers, schemas
from widget_server.context import WidgetContext

JSON = dict[str, Any]
OPENAPI = web.AppKey("sitechat_openapi", dict)
REF = "#/components/schemas/{model}"

#: request bodies, by the name the document gives them (their class name)
REQUEST_MODELS: dict[str, type[BaseModel]] = {
    model.__name__: model
    for model in (
        schemas.StartConversation,
        schemas.ResumeConversation,
        schemas.PostMessage,
        schemas.Rating,
        schemas.TranscriptRequest,
        schemas.OfflineMessage,
    )
}
#: answers, by the name the document gives them (their class name)
ANSWER_MODELS: dict[str, type[BaseModel]] = {model.__name__: model for model in answers.ANSWER_MODELS}


def component_schemas() -> JSON:
    """Every request body and answer, and the models they nest, as JSON Schema (2020-12, as OpenAPI 3.1 has it)."""
    inputs: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((model, "validation") for model in REQUEST_MODELS.values()),
        *((model, "serialization") for model in ANSWER_MODELS.values()),
    ]
    _, defs = models_json_schema(inputs, ref_template=REF)
    found: JSON = defs.get("$defs", {})
    # one model in both roles would get two names ("X-Input", "X-Output") and no $ref would find it
    if missing := (set(REQUEST_MODELS) | set(ANSWER_MODELS)) - set(found):
        raise RuntimeError(f"models without a component of their own name: {sorted(missing)}")
    return found


def _ref(model: type[BaseModel]) -> JSON:
    return {"$ref": REF.format(model=model.__name__)}


ERRORS: dict[str, str] = {
    "400": "The body is not a JSON object, or is nested too deeply; or a query parameter is malformed.",
    "401": "No bearer token was sent, or what was sent cannot be a token.",
    "403": "The token does not belong to the conversation in the path — the same answer when no such "
    "conversation exists, so ids cannot be probed — or the site does not allow the request's Origin.",
    "404": "There is no such site.",
    "405": "The path does not take this method.",
    "409": "The conversation is not in the state this needs.",
    "413": "The request body is larger than 64 KiB.",
    "415": "The file's bytes are of a type the server does not take (SITECHAT_UPLOAD_TYPES), or the body is "
    "not multipart/form-data.",
    "422": "The body is JSON but not what this operation takes: the message says which field and why.",
    "429": "Too many requests: wait the number of seconds in Retry-After.",
    "503": "A service this needs is unavailable; try again later.",
}


def _error(status: str, description: str | None = None) -> JSON:
    answer: JSON = {
        "description": description or ERRORS[status],
        "content": {"application/json": {"schema": _ref(answers.Error)}},
    }
    if status == "429":
        answer["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}, "required": True}}
    if status == "405":
        answer["headers"] = {"Allow": {"schema": {"type": "string"}}}
    return answer


def _json(description: str, model: type[BaseModel]) -> JSON:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _operation(
    summary: str,
    answers: dict[str, JSON],
    errors: list[str],
    *,
    body: type[BaseModel] | None = None,
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


ID_SCHEMA: JSON = {"type": "string", "minLength": 1, "maxLength": 64}
SITE = {"name": "site", "in": "path", "required": True, "schema": ID_SCHEMA}
CONVERSATION = {"name": "id", "in": "path", "required": True, "schema": ID_SCHEMA}
AFTER = {
    "name": "after",
    "in": "query",
    "required": False,
    "description": "the last seq the client has; only later messages are returned",
    "schema": {"type": "integer", "minimum": 0, "maximum": schemas.MAX_SEQ, "default": 0},
}
LANGUAGE = {
    "name": "language",
    "in": "path",
    "required": True,
    "description": "a language the widget speaks besides English",
    "schema": {"type": "string", "enum": [lang for lang in LANGUAGES if lang != "en"]},
}
COMMON = ["403", "405", "429"]  # every /api path: foreign origins, wrong methods, the socket/address limits


def _paths() -> JSON:
    conv = [CONVERSATION]
    return {
        "/api/v1/sites/{site}": {
            "parameters": [SITE],
            "get": _operation(
                "What the widget needs to show for a site",
                {"200": _json("The site", answers.SiteInfo)},
                ["404", "403", "405"],
                operation_id="getSite",
            ),
        },
        "/api/v1/sites/{site}/conversations": {
            "parameters": [SITE],
            "post": _operation(
                "Start a conversation; the answer holds its token",
                {"201": _json("Started", answers.ConversationStarted)},
                ["400", "404", "409", "413", "422", *COMMON],
                body=schemas.StartConversation,
                operation_id="startConversation",
            ),
        },
        "/api/v1/sites/{site}/conversations/resume": {
            "parameters": [SITE],
            "post": _operation(
                "Go on with a chat from a follow-up mail's link: its ticket for a new token (the old one stops)",
                {"200": _json("Resumed", answers.ConversationStarted)},
                ["400", "404", "413", "422", *COMMON],
                body=schemas.ResumeConversation,
                operation_id="resumeConversation",
            ),
        },
        "/api/v1/sites/{site}/offline-messages": {
            "parameters": [SITE],
            "post": _operation(
                "Leave a message when nobody is online",
                {"202": _json("Received: it is posted to the site's team chat", answers.Accepted)},
                ["400", "404", "409", "413", "422", *COMMON],
                body=schemas.OfflineMessage,
                operation_id="leaveOfflineMessage",
            ),
        },
        "/api/v1/conversations/{id}/messages": {
            "parameters": conv,
            "get": _operation(
                "The conversation's messages after a seq, in seq order",
                {"200": _json("The messages", answers.MessageList)},
                ["400", "401", *COMMON],
                bearer=True,
                parameters=[AFTER],
                operation_id="listMessages",
            ),
            "post": _operation(
                "Send a visitor message (a resend with the same client_msg_id answers 200 with the stored one)",
                {"201": _json("Stored", answers.MessageAnswer), "200": _json("Stored before", answers.MessageAnswer)},
                ["400", "401", "409", "413", "422", *COMMON],
                body=schemas.PostMessage,
                bearer=True,
                operation_id="postMessage",
            ),
        },
        "/api/v1/conversations/{id}/attachments": {
            "parameters": conv,
            "post": {
                **_operation(
                    "Upload a file to send with a message (its type is decided from its bytes)",
                    {"201": _json("Kept: send its id in a message's attachment_ids", answers.Uploaded)},
                    ["400", "401", "409", "415", "422", *COMMON],
                    bearer=True,
                    operation_id="uploadAttachment",
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "file": {"type": "string", "contentMediaType": "application/octet-stream"}
                                },
                                "required": ["file"],
                            }
                        }
                    },
                },
            },
        },
        "/api/v1/attachments/{aid}": {
            "parameters": [{"name": "aid", "in": "path", "required": True, "schema": ID_SCHEMA}],
            "get": {
                "summary": "A conversation's file, through the signed link a message gave (no token needed)",
                "operationId": "downloadAttachment",
                "security": [],
                "parameters": [
                    {"name": "exp", "in": "query", "required": True, "schema": {"type": "integer", "minimum": 0}},
                    {
                        "name": "sig",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The file, with its stored type; images inline, anything else as a download",
                        "content": {
                            "*/*": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
                        },
                    },
                    "403": _error("403", "The link is not valid or has expired: a fresh message list gives a new one."),
                    "404": _error("404", "The file is gone (its message was deleted, or its conversation erased)."),
                    "405": _error("405"),
                },
            },
        },
        "/api/v1/conversations/{id}/close": {
            "parameters": conv,
            "post": _operation(
                "Close the conversation (again: 200, nothing repeated)",
                {"200": _json("Closed", answers.Closed)},
                ["401", *COMMON],
                bearer=True,
                operation_id="closeConversation",
            ),
        },
        "/api/v1/conversations/{id}/rating": {
            "parameters": conv,
            "post": _operation(
                "Rate a closed conversation, once",
                {"200": _json("Rated", answers.Rated)},
                ["400", "401", "409", "413", "422", *COMMON],
                body=schemas.Rating,
                bearer=True,
                operation_id="rateConversation",
            ),
        },
        "/api/v1/conversations/{id}/transcript": {
            "parameters": conv,
            "post": _operation(
                "Mail the conversation to an address (a few per conversation and address per hour)",
                {"202": _json("Queued", answers.Accepted)},
                ["400", "401", "413", "422", "503", *COMMON],
                body=schemas.TranscriptRequest,
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
        "/widget-texts/{language}.json": {
            "parameters": [LANGUAGE],
            "get": {
                "summary": "A language's pack of widget texts, fetched by the widget for a visitor who needs it",
                "operationId": "widgetTexts",
                "description": "Public and the same for every site: any page may fetch it (Access-Control-Allow-"
                "Origin: *). Precompressed (brotli, gzip) as Accept-Encoding allows; revalidate with ETag.",
                "security": [],
                "responses": {
                    "200": _json("The language's texts, by key", answers.WidgetTexts),
                    "304": {"description": "Not modified since the ETag or date the request gave"},
                    "404": _error("404", "The widget does not speak this language, or it is English (built in)."),
                    "405": _error("405"),
                    "503": _error("503", "The language packs are not built on this server (make widget)."),
                },
            },
        },
        "/demo": {"get": _static("A demo page that embeds the widget for the first site", "text/html", "demoPage")},
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "operationId": "healthz",
                "security": [],
                "responses": {"200": _json("Alive", answers.Health), "405": _error("405")},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: the database and the team chats are reachable",
                "operationId": "readyz",
                "security": [],
                "responses": {
                    "200": _json("Ready", answers.Readiness),
                    "503": _json("Not ready: the problems say why", answers.Readiness),
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
    """The document for this server: its public URL, and the models of ``schemas`` and ``answers``."""
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
            "schemas": component_schemas(),
            "securitySchemes": {
                "conversationToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the token from POST /api/v1/sites/{site}/conversations",
                }
            },
        },
    }

"""The published OpenAPI document, and schemathesis fuzzing the running server with it, as a visitor.

The fuzzing is schemathesis' own runner (``python -m schemathesis.cli run``), the way anyone would point
it at the server: the examples, coverage and fuzzing phases, a fixed seed, and the checks that matter
here — no 5xx, and every answer as the document describes it (status code, content type, headers, body).
It runs as a visitor: the Origin the site allows, the site ``acme`` and a real conversation's id and
bearer token pinned (a closed one for ``/close`` and ``/rating``), so generated bodies get past the door
and reach the handlers, the store and the mailer (SMTP is set up). The site has topics and an identity
secret, so those paths are reached too. It runs on SQLite and on PostgreSQL: some values only one of
them refuses. ``SITECHAT_FUZZ_EXAMPLES`` raises the examples per operation (default 25).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from openapi_spec_validator import validate

from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.fakes.smtp import Inbox
from tests.harness import ORIGIN, RunningBridge, Visitor, free_port, wait_until
from widget_server import schemas
from widget_server.context import CONTEXT
from widget_server.openapi import ANSWER_MODELS, REQUEST_MODELS
from widget_server.ratelimit import SlidingWindow

EXAMPLES = int(os.environ.get("SITECHAT_FUZZ_EXAMPLES", "25"))
SEED = 20261123
PHASES = "examples,coverage,fuzzing"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
REF = "#/components/schemas/{model}"
METHODS = {"get", "post", "put", "patch", "delete", "options", "head"}
CONTRACT_ENDPOINTS = {  # CONTRACT §3, every row (and §4's upgrade)
    ("get", "/api/v1/sites/{site}"),
    ("post", "/api/v1/sites/{site}/conversations"),
    ("post", "/api/v1/conversations/{id}/messages"),
    ("get", "/api/v1/conversations/{id}/messages"),
    ("post", "/api/v1/conversations/{id}/close"),
    ("post", "/api/v1/conversations/{id}/rating"),
    ("post", "/api/v1/conversations/{id}/transcript"),
    ("post", "/api/v1/sites/{site}/offline-messages"),
    ("get", "/api/v1/conversations/{id}/ws"),
    ("get", "/widget.js"),
    ("get", "/demo"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
}


async def test_the_openapi_document_is_valid_31_and_covers_the_contract(
    slack_bridge: RunningBridge, visitor: Visitor
) -> None:
    status, doc, headers = await visitor.request("GET", "/api/v1/openapi.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    validate(doc)  # raises on anything that is not valid OpenAPI
    assert doc["openapi"].startswith("3.1.")
    assert doc["servers"] == [{"url": slack_bridge.url}]
    documented = {(m, path) for path, item in doc["paths"].items() for m in item if m in METHODS}
    assert documented >= CONTRACT_ENDPOINTS, CONTRACT_ENDPOINTS - documented
    components = doc["components"]["schemas"]
    # request bodies are the pydantic models the server validates with, answers the ones it serialises
    # with: not a second description beside them
    for name, model in REQUEST_MODELS.items():
        mine = model.model_json_schema(ref_template=REF)
        mine.pop("$defs", None)
        assert components[name] == mine, name
    for name, model in ANSWER_MODELS.items():
        mine = model.model_json_schema(ref_template=REF, mode="serialization")
        mine.pop("$defs", None)
        assert components[name] == mine, name
    assert components["PostMessage"]["properties"]["text"]["maxLength"] == schemas.MAX_TEXT
    message = components["Message"]
    assert set(message["required"]) == {"id", "seq", "conversation_id", "author", "text", "created_at"}
    # CONTRACT §7: files as {id, name, size, content_type, url}, the url a signed link
    attachment = components["AttachmentInfo"]
    assert message["properties"]["attachments"]["items"] == {"$ref": REF.format(model="AttachmentInfo")}
    assert set(attachment["required"]) == {"id", "name", "size", "content_type", "url"}
    assert "attachment_ids" in components["PostMessage"]["properties"]
    for model in ("TranscriptRequest", "OfflineMessage"):
        assert components[model]["properties"]["email"]["format"] == "email"
    # every operation documents the error shape, and the bearer ones their token
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            for code, answer in op["responses"].items():
                if code >= "400" and path != "/readyz":  # readiness answers 503 with its problems
                    assert answer["content"]["application/json"]["schema"] == {"$ref": REF.format(model="Error")}
            if path.startswith("/api/v1/conversations/") and not path.endswith("/ws"):
                assert op["security"] == [{"conversationToken": []}], (method, path)
                assert "401" in op["responses"] and "403" in op["responses"]


def _toml(value: Any) -> str:
    """A TOML value: strings, and inline tables of strings (JSON string escapes are TOML's too)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def schemathesis_config(open_conv: Visitor, closed_conv: Visitor) -> str:
    """A visitor's ``schemathesis.toml``: its Origin and site, and which conversation each path gets."""
    conversations = [(r"^/api/v1/conversations/\{id\}/(close|rating)$", closed_conv)]
    conversations.append((r"^/api/v1/conversations/\{id\}/(messages|transcript|ws)$", open_conv))
    lines = [f"headers = {_toml({'Origin': ORIGIN})}", "", "[parameters]", f"{_toml('path.site')} = {_toml('acme')}"]
    for regex, conv in conversations:
        lines += [
            "",
            "[[operations]]",
            f"include-path-regex = {_toml(regex)}",
            f"headers = {_toml({'Origin': ORIGIN, 'Authorization': f'Bearer {conv.token}'})}",
            f"parameters = {_toml({'path.id': conv.conversation_id})}",
        ]
    return "\n".join(lines) + "\n"


async def run_schemathesis(doc: dict[str, Any], base_url: str, config: str, workdir: Path) -> tuple[int, str]:
    """schemathesis' CLI against the running server (in a child process: this loop keeps serving)."""
    (workdir / "openapi.json").write_text(json.dumps(doc), encoding="utf-8")
    (workdir / "schemathesis.toml").write_text(config, encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", "schemathesis.toml", "run"),
        *("openapi.json", "--url", base_url, "--workers", "1", "--phases", PHASES),
        *("--max-examples", str(EXAMPLES), "--seed", str(SEED), "--checks", CHECKS),
        *("--request-timeout", "10", "--max-failures", "5", "--warnings", "off"),
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "160"},
    )
    async with asyncio.timeout(540):
        out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


class Mailbox(Inbox):
    """The test's SMTP server, also keeping each mail's envelope recipients (whom it really went to)."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        self.envelopes.append((str(self.mails[-1]["To"]), list(envelope.rcpt_tos)))
        return answer


@pytest.mark.timeout(600)
async def test_schemathesis_as_a_visitor_finds_no_server_error_and_no_schema_violation(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    bridge = await make_bridge(
        fake_slack,
        database_url=database_url,
        rate_conversations_per_hour=100_000,  # the limits are tested elsewhere; here they would only hide paths
        rate_messages_per_minute=100_000,
        smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        mail_from="help@acme.example",
        site={"identity_secret": "fuzz-identity-secret"},  # so a visitor's id and hash are checked, not ignored
    )
    assert bridge.runtime is not None
    ctx = bridge.runtime.app[CONTEXT]
    ctx.transcripts = ctx.transcripts_from = SlidingWindow(100_000, 3600)  # every address reaches the mailer
    accepted: list[str] = []  # the addresses the API took for a transcript, as it handed them on
    send_transcript = ctx.send_transcript
    assert send_transcript is not None

    async def recording(cid: str, address: str) -> None:
        accepted.append(address)
        await send_transcript(cid, address)

    ctx.send_transcript = recording
    open_conv, closed_conv = Visitor(bridge.url), Visitor(bridge.url)
    try:
        await open_conv.start()
        await closed_conv.start()
        await closed_conv.request("POST", f"/api/v1/conversations/{closed_conv.conversation_id}/close")
        status, doc, _ = await open_conv.request("GET", "/api/v1/openapi.json")
        assert status == 200
        config = schemathesis_config(open_conv, closed_conv)
        code, report = await run_schemathesis(doc, bridge.url, config, tmp_path)
        assert code == 0, report[-20_000:]
        assert "Coverage" in report and "Fuzzing" in report and f"Seed: {SEED}" in report, report[-5_000:]
        # what the API accepted, the mailer sent, to exactly that address: one the SMTP client reads otherwise
        # would go to someone else ("(x)a@b.example" to a@b.example), or nowhere, retried forever
        assert accepted, "no transcript was accepted: the fuzzing did not get past the door"
        await wait_until(lambda: len(mailbox.envelopes) >= len(accepted), 60, "every accepted transcript mailed")
        assert sorted(to for to, _ in mailbox.envelopes) == sorted(accepted)
        assert [(to, [to]) for to, _ in mailbox.envelopes] == mailbox.envelopes
        # and the server is still well: fuzzing broke nothing for the next visitor
        assert (await open_conv.say("still here?", "after-fuzz"))[0] in (200, 201)
    finally:
        await open_conv.close()
        await closed_conv.close()
        smtp.stop()

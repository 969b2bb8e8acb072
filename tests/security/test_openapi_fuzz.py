"""The published OpenAPI document, and schemathesis fuzzing the running server with it.

schemathesis calls the server with ``requests`` (blocking), so the fuzzing runs in a worker thread
while the server keeps running on the test's event loop. Hypothesis is derandomized and bounded: the
same examples every run, a few seconds in all. Raise ``SITECHAT_FUZZ_EXAMPLES`` to search harder.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import requests
import schemathesis
from aiosmtpd.controller import Controller
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis import GenerationMode

from tests.conftest import BridgeFactory
from tests.e2e.test_email_transcript import Inbox
from tests.fakes.slack_api import FakeSlack
from tests.harness import ORIGIN, RunningBridge, Visitor, free_port
from widget_server import schemas
from widget_server.openapi import REQUEST_MODELS

EXAMPLES = int(os.environ.get("SITECHAT_FUZZ_EXAMPLES", "40"))
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
    # request bodies are the pydantic models the server validates with, not a second description
    for name, model in REQUEST_MODELS.items():
        mine = model.model_json_schema(ref_template="#/components/schemas/{model}")
        mine.pop("$defs", None)
        assert components[name] == mine, name
    assert components["PostMessage"]["properties"]["text"]["maxLength"] == schemas.MAX_TEXT
    # every operation documents the error shape, and the bearer ones their token
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            for code, answer in op["responses"].items():
                if code >= "400" and path != "/readyz":  # readiness answers 503 with its problems
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            if path.startswith("/api/v1/conversations/") and not path.endswith("/ws"):
                assert op["security"] == [{"conversationToken": []}], (method, path)
                assert "401" in op["responses"] and "403" in op["responses"]


def _fuzz(doc: dict[str, Any], base_url: str, open_conv: Visitor, closed_conv: Visitor) -> list[str]:
    """Every operation, valid and invalid data: every check schemathesis has must pass. Failures, as text."""
    schema = schemathesis.openapi.from_dict(doc)
    failures: list[str] = []
    session = requests.Session()
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path.endswith("/ws"):
            continue  # a WebSocket: its frames are attacked in test_abuse_limits
        conv = closed_conv if op.path.endswith(("/close", "/rating")) else open_conv
        fixed: dict[str, Any] = {}
        if "{id}" in op.path:  # a real conversation and its token, so the bodies get past the door
            fixed["path_parameters"] = {"id": conv.conversation_id}
            fixed["headers"] = {"Authorization": f"Bearer {conv.token}"}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=op.as_strategy(generation_mode=mode, **fixed))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=base_url, session=session, headers={"Origin": ORIGIN}, timeout=10)

            try:
                run()
            except Unsatisfiable:
                pass  # nothing to make invalid: no parameters and no body
            except BaseException as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup
                if isinstance(exc, KeyboardInterrupt):
                    raise
                failures.append(f"{op.label} [{mode.value}]: {exc}")
    session.close()
    return failures


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    smtp = Controller(Inbox(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    bridge = await make_bridge(
        fake_slack,
        rate_conversations_per_hour=100_000,  # the limits are tested elsewhere; here they would only hide paths
        rate_messages_per_minute=100_000,
        smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        mail_from="help@acme.example",
    )
    open_conv, closed_conv = Visitor(bridge.url), Visitor(bridge.url)
    try:
        await open_conv.start()
        await closed_conv.start()
        await closed_conv.request("POST", f"/api/v1/conversations/{closed_conv.conversation_id}/close")
        status, doc, _ = await open_conv.request("GET", "/api/v1/openapi.json")
        assert status == 200
        failures = await asyncio.to_thread(_fuzz, doc, bridge.url, open_conv, closed_conv)
        assert not failures, "\n\n".join(failures)
        # and the server is still well: fuzzing broke nothing for the next visitor
        assert (await open_conv.say("still here?", "after-fuzz"))[0] in (200, 201)
    finally:
        await open_conv.close()
        await closed_conv.close()
        smtp.stop()

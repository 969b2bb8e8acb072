"""Pytest fixtures for a real Synapse homeserver on loopback (not a fake: the module lives with the
other test doubles so that conftest.py finds every test server in one place).

Fixtures (import them into conftest.py, e.g. ``from tests.fakes.synapse import synapse, synapse_bot,
synapse_staff  # noqa: F401``):

- ``synapse`` (session): a started :class:`LocalSynapse` in a temporary directory, stopped at the end.
- ``synapse_bot`` (session): an admin user ("the bot") whose rate limits are lifted.
- ``synapse_staff`` (per test): a fresh, uniquely named ordinary user.

Helpers: :func:`new_user` (a uniquely named user; pass ``admin=True`` for an admin),
:func:`new_bot` (a fresh admin with lifted rate limits, for tests that want their own bot) and
:func:`synapse_venv`.

NOTE FOR TEST MODULES (checked with pytest-asyncio 1.5.0, ``asyncio_mode = "auto"``,
``asyncio_default_fixture_loop_scope = "function"``): these fixtures live in the *session* event loop
(the subprocess and the aiohttp session belong to the loop that started Synapse), and pytest-asyncio
runs each test in a fresh function-scoped loop unless told otherwise. A module that uses them must
declare, at module level::

    import pytest

    pytestmark = pytest.mark.asyncio(loop_scope="session")

(or put ``@pytest.mark.asyncio(loop_scope="session")`` on each test or test class). Its own async
fixtures that talk to Synapse need ``@pytest_asyncio.fixture(loop_scope="session")`` (any ``scope``).
Without the mark pytest-asyncio 1.5 does *not* complain: the test runs in its own loop and its first
call into the homeserver fails with ``LocalHomeserverError: LocalSynapse used from another event
loop`` (a guard in LocalSynapse; aiohttp would otherwise fail obscurely). With the module-level mark,
plain ``def`` tests in the same module get a PytestWarning: make them ``async def``. Setting
``asyncio_default_test_loop_scope = "session"`` in pyproject.toml would make the mark unnecessary
suite-wide, but it also moves every other async test into the shared loop.

Synapse is never skipped: when its virtualenv is missing the fixture *fails*, telling you to run
``make synapse``, so CI cannot pass without the component.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from sitechat.demo.local_homeserver import LocalSynapse, RegisteredUser

SYNAPSE_VENV_ENV = "SITECHAT_SYNAPSE_VENV"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SYNAPSE_VENV = REPO_ROOT / ".venv-synapse"


def synapse_venv() -> Path:
    """The Synapse virtualenv ($SITECHAT_SYNAPSE_VENV, else .venv-synapse at the repo root).

    Fails the test (never skips) when it is missing or has no Synapse in it."""
    raw = os.environ.get(SYNAPSE_VENV_ENV)
    venv = Path(raw) if raw else DEFAULT_SYNAPSE_VENV
    where = f"${SYNAPSE_VENV_ENV}={raw}" if raw else f"{DEFAULT_SYNAPSE_VENV} (default)"
    if not (venv / "bin" / "python").exists():
        pytest.fail(
            f"Synapse virtualenv not found at {where}: run `make synapse` (it installs matrix-synapse "
            "into .venv-synapse), or point $SITECHAT_SYNAPSE_VENV at a venv that has it",
            pytrace=False,
        )
    if not any(venv.glob("lib/python3*/site-packages/synapse/app/homeserver.py")):
        pytest.fail(
            f"{where} is a virtualenv without matrix-synapse in it: run `make synapse`",
            pytrace=False,
        )
    return venv


def unique_localpart(prefix: str) -> str:
    # Matrix localparts are lowercase; the random part keeps tests (and re-runs) from colliding.
    return f"{prefix.lower()}-{secrets.token_hex(4)}"


async def new_user(
    synapse: LocalSynapse, prefix: str, *, admin: bool = False, displayname: str | None = None
) -> RegisteredUser:
    """Register a uniquely named user (`{prefix}-{8 hex}`) with a random password."""
    return await synapse.register(
        unique_localpart(prefix), secrets.token_urlsafe(16), admin=admin, displayname=displayname
    )


async def new_bot(synapse: LocalSynapse, prefix: str = "sitechat") -> RegisteredUser:
    """A fresh admin user whose rate limits are lifted: what the bridge's bot account looks like."""
    bot = await new_user(synapse, prefix, admin=True, displayname="Sitechat")
    await synapse.lift_ratelimit(bot.access_token, bot.user_id)
    return bot


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def synapse(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalSynapse]:
    hs = LocalSynapse(synapse_venv(), tmp_path_factory.mktemp("synapse"))
    await hs.start()
    try:
        yield hs
    finally:
        # A test that paused it and failed before resuming must not make the teardown hang.
        hs.resume()
        await hs.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def synapse_bot(synapse: LocalSynapse) -> RegisteredUser:
    return await new_bot(synapse)


@pytest_asyncio.fixture(loop_scope="session")
async def synapse_staff(synapse: LocalSynapse) -> RegisteredUser:
    return await new_user(synapse, "staff", displayname="Staff Member")

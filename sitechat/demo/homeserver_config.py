"""The local Synapse's configuration files: written by hand, read back, kept across runs.

The config is written by hand rather than with ``--generate-config`` (which is slow), as JSON: JSON
is valid YAML, so Synapse reads it, and this module can read it back without a YAML library (the
project venv has none). Only the client API is served, on 127.0.0.1; federation is off. Rate
limits are generous because the clients here are tests and a demo, not strangers.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sitechat.demo.homeserver_errors import LocalHomeserverError

CONFIG_FILE = "homeserver.yaml"
LOG_CONFIG_FILE = "log_config.yaml"
SIGNING_KEY_FILE = "signing.key"
DATABASE_FILE = "homeserver.db"
MEDIA_DIR = "media_store"
DEFAULT_LOG_FILE = "homeserver.log"

_CONFIG_HEADER = (
    "# Written by sitechat (sitechat/demo/local_homeserver.py) for a loopback Synapse.\n"
    "# It is JSON, which is valid YAML. Edits are kept across runs as long as it stays JSON;\n"
    "# the listener port and public_baseurl are rewritten at each start.\n"
)

# Generous enough that neither a test suite nor a demo ever meets them; per second / burst.
_GENEROUS = {"per_second": 1000, "burst_count": 10000}

# Every `rc_*` option Synapse 1.163 reads (synapse/config/ratelimiting.py) that can bite a client of
# the client API. rc_admin_redaction is set too so admin redactions are equally unhampered.
_RATE_LIMITS: dict[str, Any] = {
    "rc_message": _GENEROUS,
    "rc_registration": _GENEROUS,
    "rc_registration_token_validity": _GENEROUS,
    "rc_login": {"address": _GENEROUS, "account": _GENEROUS, "failed_attempts": _GENEROUS},
    "rc_admin_redaction": _GENEROUS,
    "rc_joins": {"local": _GENEROUS, "remote": _GENEROUS},
    "rc_joins_per_room": _GENEROUS,
    "rc_3pid_validation": _GENEROUS,
    "rc_invites": {"per_room": _GENEROUS, "per_user": _GENEROUS, "per_issuer": _GENEROUS},
    "rc_third_party_invite": _GENEROUS,
    "rc_media_create": _GENEROUS,
    "rc_presence": {"per_user": _GENEROUS},
    "rc_delayed_event_mgmt": _GENEROUS,
    "rc_room_creation": _GENEROUS,
    "rc_reports": _GENEROUS,
    "rc_user_directory": _GENEROUS,
    "rc_profile": _GENEROUS,
}


def _unpadded_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _port_is_free(port: int) -> bool:
    # SO_REUSEADDR as Twisted sets it: only a live listener makes the port busy, not the TIME_WAIT
    # leftovers of the previous run's connections.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def choose_port(saved_port: int | None) -> int:
    """The port of the last run when it is free (the demo's staff need not change their client's
    server), else any free one."""
    if isinstance(saved_port, int) and _port_is_free(saved_port):
        return saved_port
    return _pick_free_port()


def _read_config(path: Path) -> dict[str, Any]:
    text = "".join(line for line in path.read_text("utf-8").splitlines(True) if not line.startswith("#"))
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LocalHomeserverError(
            f"{path} is not the JSON-shaped YAML this tool writes ({exc}); "
            "restore it, or delete the workdir to start a fresh homeserver"
        ) from exc
    if not isinstance(config, dict):
        raise LocalHomeserverError(f"{path} does not hold a mapping")
    return config


def _write_json(path: Path, data: Mapping[str, Any], header: str = "") -> None:
    # Write-then-rename: a crash mid-write must not leave a half config that blocks the next demo.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(header + json.dumps(data, indent=2) + "\n", "utf-8")
    os.chmod(tmp, 0o600)  # it holds the registration secret
    tmp.replace(path)


def load_config(workdir: Path, server_name: str, extra_config: Mapping[str, Any]) -> tuple[dict[str, Any], int | None]:
    """The workdir's config (a fresh one when it has none) and the port it last listened on.

    `extra_config` is merged over a *fresh* config's top level only; a reused workdir keeps its own."""
    path = workdir / CONFIG_FILE
    if not path.exists():
        return _fresh_config(workdir, server_name, extra_config), None
    config = _read_config(path)
    saved_name = config.get("server_name")
    if saved_name != server_name:
        # The database is bound to its server name: Synapse would refuse to start.
        raise LocalHomeserverError(
            f"{workdir} holds a homeserver for server_name {saved_name!r}, not {server_name!r}; use another workdir"
        )
    saved_port = next((ln.get("port") for ln in config.get("listeners", []) if isinstance(ln, dict)), None)
    return config, saved_port


def write_config(workdir: Path, config: dict[str, Any], port: int, log_path: Path) -> str:
    """Point the config at `port`, check it is whole, write it and its log config; returns the
    registration shared secret (the admin API needs it to create users)."""
    path = workdir / CONFIG_FILE
    config["listeners"] = [_listener(port)]
    config["public_baseurl"] = f"http://127.0.0.1:{port}/"
    secret = config.get("registration_shared_secret")
    if not isinstance(secret, str) or not secret:
        raise LocalHomeserverError(f"{path} has no registration_shared_secret")
    if not Path(str(config.get("signing_key_path", ""))).exists():
        raise LocalHomeserverError(f"{path}: the signing key file is missing")
    _write_json(path, config, _CONFIG_HEADER)
    _write_json(Path(str(config["log_config"])), _log_config(log_path))
    return secret


def _fresh_config(workdir: Path, server_name: str, extra_config: Mapping[str, Any]) -> dict[str, Any]:
    key_path = workdir / SIGNING_KEY_FILE
    if not key_path.exists():
        key_path.write_text(f"ed25519 a_key {_unpadded_b64(secrets.token_bytes(32))}\n", "ascii")
        os.chmod(key_path, 0o600)
    config: dict[str, Any] = {
        "server_name": server_name,
        "report_stats": False,
        "database": {"name": "sqlite3", "args": {"database": str(workdir / DATABASE_FILE)}},
        "media_store_path": str(workdir / MEDIA_DIR),
        "signing_key_path": str(key_path),
        "log_config": str(workdir / LOG_CONFIG_FILE),
        "registration_shared_secret": secrets.token_urlsafe(32),
        "macaroon_secret_key": secrets.token_urlsafe(32),
        "form_secret": secrets.token_urlsafe(32),
        "enable_registration": False,
        # Hashing cost only protects stolen databases; 4 rounds make register/login ~15x faster.
        "bcrypt_rounds": 4,
        # No federation at all: no key servers, no remote domains.
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "presence": {"enabled": False},
        "url_preview_enabled": False,
        "user_directory": {"enabled": False},
        # Otherwise identical /sync requests get a cached answer for 2 minutes.
        "caches": {"sync_response_cache_duration": 0},
        "enable_metrics": False,
        **_RATE_LIMITS,
    }
    config.update(extra_config)
    return config


def _listener(port: int) -> dict[str, Any]:
    return {
        "port": port,
        "bind_addresses": ["127.0.0.1"],
        "type": "http",
        "tls": False,
        "x_forwarded": False,
        "resources": [{"names": ["client"], "compress": False}],
    }


def _log_config(log_path: Path) -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {
            "precise": {"format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s"}
        },
        # Supplies %(request)s; Synapse's own records expect it.
        "filters": {"context": {"()": "synapse.logging.context.LoggingContextFilter", "request": ""}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "precise",
                "filename": str(log_path),
                "filters": ["context"],
                "encoding": "utf8",
            }
        },
        "root": {"level": "WARNING", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }

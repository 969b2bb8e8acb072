"""One part of the settings per side of the bridge: each adapter's factory gets its own part and nothing else.

A part is frozen and complete: a team chat's part exists only when that team chat is turned on
(``Settings.slack`` is ``None`` without ``SLACK_BOT_TOKEN``), so whoever holds one needs no further check.
Which variable fills which field is ``config/variables.py``'s table.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from config.sites import comma_list

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(value: Any) -> Any:
    """``"127.0.0.1, 10.0.0.0/8"`` → networks, parsed once here rather than per request; a bad entry is named."""
    entries = comma_list(value)
    if not isinstance(entries, list | tuple):
        return entries
    networks: list[Any] = []
    bad: list[str] = []
    for entry in entries:
        if isinstance(entry, Network):
            networks.append(entry)
            continue
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            bad.append(f"{entry!r} is not an IP address or network (like 192.0.2.1 or 10.0.0.0/8)")
    if bad:
        raise ValueError("\n".join(bad))  # one problem line each
    return tuple(networks)


class Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _content_types(value: Any) -> Any:
    """``image/png,application/pdf``: a comma list of content types, lower case."""
    if isinstance(value, str):
        types = {t.strip().lower() for t in value.split(",") if t.strip()}
        bad = sorted(t for t in types if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*", t))
        if bad:
            raise ValueError(f"{', '.join(bad)}: not a content type such as image/png")
        if not types:
            raise ValueError("name at least one type, such as image/png")
        return frozenset(types)
    return value


class WidgetSettings(Part):
    """The widget server (which also serves Slack's ``POST /slack/events``): where it listens, how browsers
    reach it, and how much one client may ask of it."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    #: how browsers reach the server, without a trailing slash; ``http://{host}:{port}`` when not set
    public_url: str = Field(default=None, validate_default=True)
    conversations_per_hour: int = Field(default=20, ge=1)
    messages_per_minute: int = Field(default=30, ge=1)
    sockets_per_address: int = Field(default=20, ge=1)
    #: proxies whose ``X-Forwarded-For`` is believed for the client address
    trusted_proxies: Annotated[tuple[Network, ...], BeforeValidator(_networks)] = ()
    #: a GeoLite2/GeoIP2 City database (``.mmdb``): the thread's root shows where a visitor is
    geoip_db: Path | None = None
    #: the file types a visitor may send (decided from the bytes), and how large a file may be (both ways)
    upload_types: Annotated[frozenset[str], BeforeValidator(_content_types)] = frozenset(
        {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"}
    )
    upload_max_mb: float = Field(default=10, gt=0, le=1024)
    #: how long the widget's signed links to files work
    attachment_link_hours: float = Field(default=24, gt=0, le=24 * 365)

    @field_validator("geoip_db", mode="before")
    @classmethod
    def _geoip_db(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        path = Path(value)
        if not path.is_file():
            raise ValueError(f"{path} is not a file; download GeoLite2-City.mmdb from MaxMind (free account)")
        return path

    @field_validator("public_url", mode="before")
    @classmethod
    def _public_url(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or value == "":
            value = f"http://{info.data.get('host', '127.0.0.1')}:{info.data.get('port', 8080)}"
        return value.rstrip("/") if isinstance(value, str) else value


class SlackSettings(Part):
    """Slack, on when ``SLACK_BOT_TOKEN`` is set: HTTP mode with a signing secret, or Socket Mode with an
    app-level token."""

    bot_token: SecretStr
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    api_url: str = "https://slack.com/api/"
    #: posts per channel per second (Slack allows about one, with a short burst); raised only for a
    #: Slack-compatible server without that limit, or to benchmark the bridge's own machinery
    posts_per_second: float = Field(default=1.0, gt=0, le=1000)

    @field_validator("bot_token")
    @classmethod
    def _bot_token_shape(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("a bot token starts with xoxb-, e.g. xoxb-1234-5678-abcd")
        return value

    @field_validator("app_token")
    @classmethod
    def _app_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("an app-level token starts with xapp-, e.g. xapp-1-A0123-4567-abcd")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url_shape(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL like https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _a_way_in(self) -> Self:
        if self.app_token is None and self.signing_secret is None:
            raise ValueError(
                "SLACK_SIGNING_SECRET is needed in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode); "
                "find it under Basic Information → Signing Secret"
            )
        return self


class MatrixSettings(Part):
    """Matrix, on when ``MATRIX_HOMESERVER`` is set: the bot's account and who may answer visitors."""

    homeserver: str
    user_id: str
    password: SecretStr | None = None
    access_token: SecretStr | None = None
    #: the bot's device, kept across restarts
    device_id: str | None = None
    #: user ids or ``:server`` suffixes allowed to answer visitors; empty = any room member but the bot
    staff: Annotated[tuple[str, ...], BeforeValidator(comma_list)] = ()
    #: where the bot's end-to-end encryption keys live (a directory): back it up with the database
    store_path: str = Field(default="./sitechat-matrix-store", min_length=1)
    #: whose devices get the room keys: ``members`` (every device of the room's members, each pinned on
    #: first use) or ``verified`` (only devices their owner has cross-signed)
    trust: Literal["members", "verified"] = "members"

    @model_validator(mode="after")
    def _a_login(self) -> Self:
        if self.password is None and self.access_token is None:
            raise ValueError("MATRIX_PASSWORD or MATRIX_ACCESS_TOKEN is needed with MATRIX_HOMESERVER")
        return self


class EmailSettings(Part):
    """Transcripts and follow-ups by email, on when ``SITECHAT_SMTP_URL`` is set; with ``SITECHAT_INBOUND_SMTP``
    and ``SITECHAT_INBOUND_DOMAIN`` the visitor's replies to a follow-up come back (the bridge's own listener)."""

    smtp_url: SecretStr
    mail_from: str
    #: ``host:port`` the bridge's SMTP listener binds (``0.0.0.0:2525``); None: no mail comes in
    inbound_smtp: tuple[str, int] | None = None
    #: the domain of the per-conversation Reply-To addresses (its MX points at the listener)
    inbound_domain: str | None = None

    @field_validator("inbound_smtp", mode="before")
    @classmethod
    def _listen_address(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            return value
        host, sep, port = value.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, e.g. 0.0.0.0:2525")
        return host.strip("[]"), int(port)

    @field_validator("inbound_domain", mode="before")
    @classmethod
    def _domain_shape(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        domain = str(value).strip().lower().rstrip(".")
        labels = domain.split(".")
        if len(labels) < 2 or not all(re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", label) for label in labels):
            raise ValueError("must be a mail domain whose MX reaches the listener, e.g. reply.acme.example")
        return domain

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if (self.inbound_smtp is None) != (self.inbound_domain is None):
            raise ValueError(
                "SITECHAT_INBOUND_SMTP and SITECHAT_INBOUND_DOMAIN go together: the listener receives the "
                "replies to addresses at the domain (e.g. 0.0.0.0:2525 and reply.acme.example)"
            )
        return self

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url_shape(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("smtp://", "smtps://")):
            raise ValueError("must look like smtp://user:pass@mail.example.org:587 (or smtps://)")
        return value

    @field_validator("mail_from")
    @classmethod
    def _mail_from_shape(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("must be an address, e.g. support@acme.example")
        return value


class WebhookSettings(Part):
    """The site's own systems told of each closed and each rated conversation, on when
    ``SITECHAT_WEBHOOK_URL`` is set; ``SITECHAT_WEBHOOK_SECRET`` signs every request."""

    url: str
    secret: SecretStr

    @field_validator("url")
    @classmethod
    def _url_shape(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL, e.g. https://crm.acme.example/hooks/sitechat")
        return value

    @field_validator("secret")
    @classmethod
    def _secret_strength(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().strip()) < 16:
            raise ValueError("use at least 16 random characters, e.g. the output of `openssl rand -hex 32`")
        return value

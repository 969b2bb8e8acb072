"""The two addresses a follow-up mail carries (CONTRACT §8), signed with a key the bridge keeps in its
database (made once, shared by every instance). Pure: the key, the time and the stored token's hash are
handed in.

- **Reply-To**: ``c-{conversation id, base32}.{signature}@{SITECHAT_INBOUND_DOMAIN}``. Lower case only (mail
  servers may change the case of a local part), 58 characters before the ``@`` (at most 64 are allowed),
  and unguessable: the 80-bit signature is over the conversation's id, so an address cannot be made up
  for a conversation from its id alone (ids are shown to the team, in buttons and logs).
- **Resume link**: the page the visitor was on, with ``#sitechat-resume={ticket}``; the widget there trades
  the ticket for a fresh token (``POST /api/v1/sites/{site}/conversations/resume``). The raw token never
  goes into a mail: the store keeps only its hash anyway, and a token in a mailbox would be good for as long
  as the chat lives. A ticket is ``{id}.{expires}.{signature}``, the signature over the id, the expiry and
  the hash of the conversation's current token, so it is good ``RESUME_DAYS`` at most and **once**: trading
  it replaces the token, which breaks every ticket signed over the old one. The fragment never reaches
  the site's server nor a ``Referer``. Only a page on one of the site's own origins is linked (a visitor
  could report any page; a mail from the site must not lead elsewhere); else the site's first origin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

PREFIX = "c-"
FRAGMENT = "sitechat-resume="
#: how long a resume link in a mail is good for
RESUME_DAYS = 7
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TICKET = re.compile(r"([A-Za-z0-9_-]{1,64})\.([0-9]{1,12})\.([0-9a-f]{32})")


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes:
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


def _mac(key: bytes, *parts: str) -> bytes:
    return hmac.new(key, "|".join(parts).encode(), hashlib.sha256).digest()


def reply_address(key: bytes, cid: str, domain: str) -> str:
    """The conversation's own Reply-To address."""
    return f"{PREFIX}{_b32(cid.encode())}.{_b32(_mac(key, 'reply', cid)[:10])}@{domain.lower()}"


def conversation_of(key: bytes, address: str, domain: str) -> str | None:
    """The conversation an address made by :func:`reply_address` belongs to; None for any other address
    (another domain, a made-up or altered one). ``<…>`` and case do not matter."""
    local, at, host = address.strip().strip("<>").lower().rpartition("@")
    if not at or host.rstrip(".") != domain.lower() or not local.startswith(PREFIX):
        return None
    encoded, dot, signature = local.removeprefix(PREFIX).partition(".")
    try:
        cid = _unb32(encoded).decode("ascii")
        given = _unb32(signature)
    except (ValueError, UnicodeDecodeError):
        return None
    if not dot or not _ID.fullmatch(cid):
        return None
    return cid if hmac.compare_digest(given, _mac(key, "reply", cid)[:10]) else None


def resume_ticket(key: bytes, cid: str, token_hash: str, expires: int) -> str:
    """A ticket that trades for a token of ``cid`` until ``expires`` (Unix seconds), while its token is
    the one whose hash is ``token_hash``."""
    return f"{cid}.{expires}.{_mac(key, 'resume', cid, str(expires), token_hash)[:16].hex()}"


def ticket_conversation(ticket: str) -> str | None:
    """The conversation a well-formed ticket names (not yet checked: :func:`ticket_valid`)."""
    found = _TICKET.fullmatch(ticket)
    return found.group(1) if found else None


def ticket_valid(key: bytes, ticket: str, token_hash: str, now: float) -> bool:
    """Good: signed by us for this conversation and its current token, and not expired."""
    found = _TICKET.fullmatch(ticket)
    if found is None:
        return False
    cid, expires, signature = found.groups()
    expected = resume_ticket(key, cid, token_hash, int(expires)).rpartition(".")[2]
    return hmac.compare_digest(expected, signature) and now <= int(expires)


def resume_link(page_url: str | None, origins: Sequence[str], ticket: str) -> str | None:
    """Where the widget resumes the chat: the visitor's page when it is on one of the site's origins, else
    the site's first origin; None when the site names no origin."""
    page = _on_origin(page_url, origins) if page_url else None
    base = page or (origins[0].rstrip("/") + "/" if origins else None)
    if base is None:
        return None
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, FRAGMENT + ticket))


def _on_origin(url: str, origins: Sequence[str]) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    allowed = {o.lower().rstrip("/") for o in origins}
    return url if parts.scheme in ("http", "https") and origin in allowed else None

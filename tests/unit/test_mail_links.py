"""``bridge/mail_links.py``: the Reply-To address and the resume link of a follow-up mail — signed, lower
case, refused when altered, expired, used or pointing off the site."""

from __future__ import annotations

import secrets

import pytest

from bridge.mail_links import (
    conversation_of,
    reply_address,
    resume_link,
    resume_ticket,
    ticket_conversation,
    ticket_valid,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(32)
CID = "Q_zVV4CmTyYfZEKJH7BzMkUO"
DOMAIN = "reply.acme.example"


def test_a_reply_address_is_lower_case_fits_a_local_part_and_names_its_conversation() -> None:
    for cid in [CID, *(secrets.token_urlsafe(18) for _ in range(50))]:
        address = reply_address(KEY, cid, DOMAIN)
        local = address.partition("@")[0]
        assert address == address.lower() and len(local) <= 64 and address.endswith("@" + DOMAIN)
        assert conversation_of(KEY, address, DOMAIN) == cid


ADDRESS = reply_address(KEY, CID, DOMAIN)
LOCAL = ADDRESS.partition("@")[0]
REFUSED: dict[str, tuple[str, bytes, str]] = {
    "another key": (ADDRESS, OTHER_KEY, DOMAIN),
    "another domain": (LOCAL + "@evil.example", KEY, DOMAIN),
    "a signature changed": (LOCAL[:-1] + ("a" if LOCAL[-1] != "a" else "b") + "@" + DOMAIN, KEY, DOMAIN),
    "the id changed": (LOCAL.replace("c-k", "c-l", 1) + "@" + DOMAIN, KEY, DOMAIN),
    "no signature": (LOCAL.partition(".")[0] + "@" + DOMAIN, KEY, DOMAIN),
    "not ours at all": ("support@" + DOMAIN, KEY, DOMAIN),
    "not base32": ("c-!!!.aaaa@" + DOMAIN, KEY, DOMAIN),
    "no @": (LOCAL, KEY, DOMAIN),
}


@pytest.mark.parametrize(("address", "key", "domain"), REFUSED.values(), ids=REFUSED.keys())
def test_an_address_that_is_not_the_conversations_own_is_refused(address: str, key: bytes, domain: str) -> None:
    assert conversation_of(key, address, domain) is None


def test_case_and_angle_brackets_do_not_matter() -> None:
    assert conversation_of(KEY, f"<{ADDRESS.upper()}>", DOMAIN.upper()) == CID


TICKET = resume_ticket(KEY, CID, "hash-1", 1_000)
TICKETS: dict[str, tuple[str, str, float, bool]] = {
    "good until it expires": (TICKET, "hash-1", 999.0, True),
    "good at the very second": (TICKET, "hash-1", 1_000.0, True),
    "expired": (TICKET, "hash-1", 1_000.5, False),
    "used: the token was replaced": (TICKET, "hash-2", 999.0, False),
    "its time changed": (TICKET.replace(".1000.", ".9999.", 1), "hash-1", 999.0, False),
    "its id changed": ("A" + TICKET[1:], "hash-1", 999.0, False),
    "another key signed it": (resume_ticket(OTHER_KEY, CID, "hash-1", 1_000), "hash-1", 999.0, False),
    "malformed": ("nonsense", "hash-1", 999.0, False),
}


@pytest.mark.parametrize(("ticket", "token_hash", "now", "good"), TICKETS.values(), ids=TICKETS.keys())
def test_a_resume_ticket_is_good_once_and_until_it_expires(
    ticket: str, token_hash: str, now: float, good: bool
) -> None:
    assert ticket_valid(KEY, ticket, token_hash, now) is good


def test_a_ticket_names_its_conversation() -> None:
    assert ticket_conversation(TICKET) == CID
    assert ticket_conversation("a.b.c") is None


ORIGINS = ["https://acme.example", "https://www.acme.example"]
LINKS: dict[str, tuple[str | None, list[str], str | None]] = {
    "the page the visitor was on": (
        "https://acme.example/pricing?plan=pro",
        ORIGINS,
        "https://acme.example/pricing?plan=pro#sitechat-resume=T",
    ),
    "its own fragment gives way": (
        "https://www.acme.example/faq#shipping",
        ORIGINS,
        "https://www.acme.example/faq#sitechat-resume=T",
    ),
    "a page off the site: the site's first origin": (
        "https://evil.example/acme",
        ORIGINS,
        "https://acme.example/#sitechat-resume=T",
    ),
    "no page: the site's first origin": (None, ORIGINS, "https://acme.example/#sitechat-resume=T"),
    "not http(s)": ("javascript:alert(1)//acme.example", ORIGINS, "https://acme.example/#sitechat-resume=T"),
    "no origin at all": (None, [], None),
}


@pytest.mark.parametrize(("page", "origins", "expected"), LINKS.values(), ids=LINKS.keys())
def test_resume_link(page: str | None, origins: list[str], expected: str | None) -> None:
    assert resume_link(page, origins, "T") == expected

"""``bridge/follow_up.py``'s mail, as the visitor reads it: their language, every reply, how to go on; HTML
with everything people wrote escaped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.follow_up import render_html, render_text
from bridge.model import ConversationId, Message, Participant, Role

AT = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)
REPLIES = [
    Message("m1", ConversationId("c1"), 2, Participant(Role.AGENT, "Alice"), "It left today.", AT),
    Message("m2", ConversationId("c1"), 3, Participant(Role.AGENT, "Alice"), "Blue <b>or</b> red?\nSay it.", AT),
]
LINK = "https://acme.example/p#sitechat-resume=c1.1.ab"

TEXTS: dict[str, tuple[str, bool, str]] = {
    "English, answerable": (
        "en",
        True,
        "You have a new reply in your chat with Acme:\n\nAlice: It left today.\nAlice: Blue <b>or</b> red?\nSay it.\n\n"
        f"Continue the chat: {LINK}\nOr simply answer this email: your reply goes straight to the team.\n",
    ),
    "German, no inbound domain": (
        "de",
        False,
        "Sie haben eine neue Antwort in Ihrem Chat mit Acme:\n\nAlice: It left today.\nAlice: Blue <b>or</b> red?\n"
        f"Say it.\n\nChat fortsetzen: {LINK}\n",
    ),
    "a language the bridge does not speak is English": (
        "xx",
        False,
        "You have a new reply in your chat with Acme:\n\nAlice: It left today.\nAlice: Blue <b>or</b> red?\nSay it.\n\n"
        f"Continue the chat: {LINK}\n",
    ),
}


@pytest.mark.parametrize(("language", "answerable", "expected"), TEXTS.values(), ids=TEXTS.keys())
def test_the_mails_text(language: str, answerable: bool, expected: str) -> None:
    assert render_text("Acme", language, REPLIES, LINK, answerable) == expected


def test_the_mails_html_escapes_what_people_wrote_and_links_the_chat() -> None:
    html = render_html("Acme & Co", "fr", REPLIES, LINK, True)
    assert "Blue &lt;b&gt;or&lt;/b&gt; red?<br>Say it." in html and "<b>or</b>" not in html
    assert "Acme &amp; Co" in html
    assert f'Reprendre le chat : <a href="{LINK}">{LINK}</a>' in html
    assert "votre réponse va directement" in html


def test_without_a_link_the_mail_says_how_to_answer_only() -> None:
    text = render_text("Acme", "es", REPLIES[:1], None, True)
    assert "Continuar" not in text and text.endswith("su respuesta llega directamente al equipo.\n")

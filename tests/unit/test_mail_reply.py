"""``adapters/email/reply_text.py``: a visitor's reply by email as chat text — quoted history, the headers
above it and signatures cut, in the languages the widget speaks."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from adapters.email.reply_text import html_text, mail_body, reply_text

CASES: dict[str, tuple[str, str]] = {
    "plain text stays": ("Yes, that works for me.", "Yes, that works for me."),
    "lines and paragraphs stay": ("line one\nline two\n\nparagraph two", "line one\nline two\n\nparagraph two"),
    "a hyphen list is no signature": ("I want:\n- a red one\n- a blue one", "I want:\n- a red one\n- a blue one"),
    "Gmail: On … wrote:": (
        "Fine, thanks.\n\nOn Wed, Dec 20, 2023 at 1:37 PM Acme <c-x@in.acme.example> wrote:\n> Hi Ann\n> How are you?",
        "Fine, thanks.",
    ),
    "Gmail, the header wrapped over two lines": (
        "Fine.\n\nOn Wed, Dec 20, 2023 at 1:37 PM Acme Support <c-abcdefg@in.example>\nwrote:\n\n> Hi",
        "Fine.",
    ),
    "> quotes without a header": ("Thanks!\n\n> Alice: your order shipped\n> yesterday", "Thanks!"),
    "answers between quotes": ("> Which colour?\nBlue\n> Which size?\nM", "Blue\nM"),
    "Outlook: -----Original Message-----": (
        "Sounds good.\n\n-----Original Message-----\nFrom: Acme <c@x>\nSent: Monday\nTo: ann\nSubject: Re\n\nHello",
        "Sounds good.",
    ),
    "Outlook, German: Von/Gesendet/An/Betreff": (
        "Danke\n\n________________________________\n"
        "Von: Acme <c@x>\nGesendet: Montag\nAn: Ann\nBetreff: AW: Chat\n\nHallo",
        "Danke",
    ),
    "Outlook, French: De/Envoyé/À/Objet": (
        "Merci\n\nDe : Acme <c@x>\nEnvoyé : lundi\nÀ : Ann\nObjet : RE: chat\n\nBonjour",
        "Merci",
    ),
    "a -- signature": ("See you\n\n-- \nAnn Example\nACME Corp", "See you"),
    "a -- signature without its space": ("bye\n--\nAnn", "bye"),
    "Sent from my iPhone": ("Ok great\n\nSent from my iPhone", "Ok great"),
    "German: Am … schrieb …:": ("Ja, danke!\n\nAm 20.12.2023 um 13:37 schrieb Acme <c@x>:\n> Hallo", "Ja, danke!"),
    "German, wrapped": (
        "Passt.\n\nAm Mi., 20. Dez. 2023 um 13:37 Uhr schrieb Acme Support <\nc-abc@in.example>:\n> Hallo",
        "Passt.",
    ),
    "German: Von meinem iPhone gesendet": ("Gut\n\nVon meinem iPhone gesendet", "Gut"),
    "French: Le … a écrit :": (
        "Oui merci\n\nLe mer. 20 déc. 2023 à 13:37, Acme <c@x> a écrit :\n> Bonjour",
        "Oui merci",
    ),
    "French: Envoyé de mon iPhone": ("Bien\n\nEnvoyé de mon iPhone", "Bien"),
    "Spanish: El … escribió:": (
        "Gracias\n\nEl mié, 20 dic 2023 a las 13:37, Acme (<c@x>) escribió:\n> Hola",
        "Gracias",
    ),
    "Spanish: Enviado desde mi iPhone": ("Vale\n\nEnviado desde mi iPhone", "Vale"),
    "CRLF line ends": ("Hi\r\n\r\nOn Mon, Jan 1, 2024 at 10:00 AM X <x@y> wrote:\r\n> old", "Hi"),
    "nothing but a quote": ("> hi\n> there", ""),
    "empty": ("", ""),
}


@pytest.mark.parametrize(("body", "expected"), CASES.values(), ids=CASES.keys())
def test_reply_text(body: str, expected: str) -> None:
    assert reply_text(body) == expected


HTML: dict[str, tuple[str, str]] = {
    "blocks are lines, inline tags run on": (
        "<div>Hello <b>there</b>, fri<i>end</i></div><div>line 2</div>",
        "Hello there, friend\nline 2",
    ),
    "a Gmail quote becomes > lines": (
        '<div>Yes</div><div class="gmail_quote">On x wrote:<blockquote>old</blockquote></div>',
        "Yes\n> On x wrote:\n> > old",
    ),
    "breaks and entities": ("a<br>b &amp; c", "a\nb & c"),
    "styles and scripts are no text": ("<style>p{color:red}</style><p>Hi</p><script>x()</script>", "Hi"),
}


@pytest.mark.parametrize(("html", "expected"), HTML.values(), ids=HTML.keys())
def test_html_text(html: str, expected: str) -> None:
    assert html_text(html) == expected


def test_the_plain_part_wins_and_html_only_mail_is_read_as_text() -> None:
    both = EmailMessage()
    both.set_content("plain words")
    both.add_alternative("<p>html words</p>", subtype="html")
    assert mail_body(both).strip() == "plain words"
    html_only = EmailMessage()
    html_only.set_content("<p>Blue, please</p><blockquote>Which colour?</blockquote>", subtype="html")
    assert reply_text(mail_body(html_only)) == "Blue, please"

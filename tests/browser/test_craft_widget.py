"""The widget in the visitor's language and the chat invitation (CONTRACT §10), in headless Chromium against
the real server: every name a screen reader reads is translated, axe finds nothing serious in any
language, an English visitor loads nothing more than widget.js, and the invitation comes once a visit.

Waits are Playwright's ``expect`` and page-side polls; where nothing must happen, the page is first let
run past the moment it would have happened (``page_ran``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import BridgeFactory, Browse, EmbeddingSite, Visit, thread_root
from tests.browser.test_widget_page import axe_violations
from tests.fakes.slack_api import FakeSlack
from tests.harness import RunningBridge, SlackAgent

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

Screenshot = Callable[[Page, str], Awaitable[Path]]
#: the site as the screenshot in docs/ shows it: no greeting of its own, so the catalogue's in each language
BIKES = {"name": "Acme Bikes", "greeting": None}

#: browser locale → (language, what a screen reader meets, in order: launcher, its name while open,
#: the panel, the greeting, Name, Email, Topic, Start chat, Message, Send, End chat)
LANGUAGES = {
    "de-DE": (
        "de",
        [
            *("Chat öffnen", "Chat schließen", "Chat mit Acme Bikes", "Hallo! Wie können wir helfen?"),
            *("Name", "E-Mail", "Thema", "Chat starten", "Nachricht", "Senden", "Chat beenden"),
        ],
    ),
    "fr-FR": (
        "fr",
        [
            *("Ouvrir le chat", "Fermer le chat", "Chat avec Acme Bikes"),
            "Bonjour\u00a0! Comment pouvons-nous vous aider\u00a0?",
            *("Nom", "E-mail", "Sujet", "Démarrer le chat", "Message", "Envoyer", "Terminer le chat"),
        ],
    ),
    "es-ES": (
        "es",
        [
            *("Abrir chat", "Cerrar chat", "Chat con Acme Bikes", "¡Hola! ¿En qué podemos ayudarle?"),
            *("Nombre", "Correo electrónico", "Tema", "Iniciar chat", "Mensaje", "Enviar", "Finalizar chat"),
        ],
    ),
}


def packs_fetched(visit: Visit) -> list[str]:
    return [url for url in visit.console if url.startswith("request: ") and "/widget-texts/" in url]


async def open_in(browse: Browse, url: str, locale: str) -> Visit:
    # bypass_csp: axe is injected; reduced motion: axe reads colours after the panel has faded in
    visit = await browse("about:blank", locale=locale, bypass_csp=True, reduced_motion="reduce")
    visit.page.on("request", lambda r: visit.console.append(f"request: {r.url}"))
    await visit.page.goto(url)
    return visit


@pytest.mark.parametrize("locale", list(LANGUAGES))
async def test_the_widget_speaks_the_browsers_language_and_passes_axe(
    make_bridge: BridgeFactory,
    fake_slack: FakeSlack,
    make_agent: Callable[[RunningBridge], SlackAgent],
    browse: Browse,
    screenshot: Screenshot,
    axe_source: Path,
    locale: str,
) -> None:
    language, names = LANGUAGES[locale]
    launcher, close, panel, greeting, name, email, topic, start, message, send, end = names
    bridge = await make_bridge(fake_slack, site=BIKES)
    visit = await open_in(browse, bridge.url + "/demo", locale)
    page = visit.page
    await expect(page.get_by_role("button", name=launcher, exact=True)).to_be_visible()
    await expect(visit.widget.host.locator(".widget")).to_have_attribute("lang", language)
    assert packs_fetched(visit) == [f"request: {bridge.url}/widget-texts/{language}.json"]
    assert await axe_violations(visit, axe_source) == [], "the closed widget"

    await page.get_by_role("button", name=launcher, exact=True).click()
    dialog = page.get_by_role("dialog", name=panel, exact=True)
    await expect(dialog).to_be_visible()
    await expect(page.get_by_role("button", name=close, exact=True)).to_have_attribute("aria-expanded", "true")
    await expect(dialog).to_contain_text(greeting)
    await page.get_by_role("textbox", name=name, exact=True).fill("Jana Novak")
    await page.get_by_role("textbox", name=email, exact=True).fill("jana@example.org")
    await page.get_by_role("combobox", name=topic, exact=True).select_option(index=1)
    assert await axe_violations(visit, axe_source) == [], "the form"
    await page.get_by_role("button", name=start, exact=True).click()

    box = page.get_by_role("textbox", name=message, exact=True)
    await expect(box).to_be_focused()
    await expect(page.get_by_role("button", name=end, exact=True)).to_be_visible()
    await box.fill("Gibt es das Tourer XL auch in Grün?" if language == "de" else "¿Hola?")
    await page.get_by_role("button", name=send, exact=True).click()
    await expect(box).to_have_value("")

    if language == "de":  # the German screenshot of the README
        root = await thread_root(fake_slack, "C0SALES", "Jana Novak")
        await fake_slack.wait_for(lambda: fake_slack.replies("C0SALES", root["ts"]), message="Jana's line in Slack")
        agent = make_agent(bridge)
        await agent.reply("C0SALES", root["ts"], "Hallo Jana! Ja, in Tannengrün und in Schwarz.")
        await expect(visit.widget.log.get_by_text("Hallo Jana! Ja, in Tannengrün und in Schwarz.")).to_be_visible()
        await box.fill("Super, danke!")
        await screenshot(page, "widget-open-de")
    assert await axe_violations(visit, axe_source) == [], "the conversation"


async def test_an_english_visitor_loads_no_language_pack(
    slack_bridge: RunningBridge, browse: Browse, axe_source: Path
) -> None:
    visit = await open_in(browse, slack_bridge.url + "/demo", "en-US")
    await expect(visit.widget.launcher).to_be_visible()
    await expect(visit.widget.host.locator(".widget")).to_have_attribute("lang", "en")
    assert packs_fetched(visit) == []


async def test_the_sites_language_wins_over_the_browsers(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, browse: Browse
) -> None:
    bridge = await make_bridge(fake_slack, site={**BIKES, "language": "es"})
    visit = await open_in(browse, bridge.url + "/demo", "de-DE")
    await expect(visit.page.get_by_role("button", name="Abrir chat", exact=True)).to_be_visible()


# -- the invitation -------------------------------------------------------------------------------------

INVITING = {**BIKES, "invite_after_seconds": "0.3", "invite_pages": "/demo, /pricing/*"}


async def page_ran(page: Page, seconds: float) -> None:
    """Until the page has been open ``seconds`` (its own clock): what was due by then has happened."""
    await page.wait_for_function(f"() => performance.now() > {seconds * 1000}", polling=50)


async def test_the_invitation_comes_once_a_visit_and_opens_the_chat(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, browse: Browse, axe_source: Path, screenshot: Screenshot
) -> None:
    bridge = await make_bridge(fake_slack, site=INVITING)
    visit = await browse(bridge.url + "/demo", bypass_csp=True, reduced_motion="reduce")
    page = visit.page
    invitation = page.get_by_role("dialog", name="Chat invitation", exact=True)
    await expect(invitation).to_be_visible()
    greeting = invitation.get_by_role("button", name="Hi! How can we help?", exact=True)
    await expect(greeting).to_be_visible()
    # non-modal: it takes no focus, and a screen reader hears it once
    assert await page.evaluate("() => document.activeElement === document.body")
    await expect(visit.widget.announcer).to_contain_text("Chat invitation: Hi! How can we help?")
    assert await axe_violations(visit, axe_source) == [], "the invitation"
    await screenshot(page, "widget-invitation")

    await invitation.get_by_role("button", name="Dismiss", exact=True).click()
    await expect(invitation).to_be_hidden()
    # the same visit (a reload keeps the session): not again
    await page.reload()
    await expect(visit.widget.launcher).to_be_visible()
    await page_ran(page, 1.0)
    await expect(invitation).to_be_hidden()

    # another visit: invited again; the greeting opens the chat, and the bubble goes
    other = await browse(bridge.url + "/demo")
    invitation = other.page.get_by_role("dialog", name="Chat invitation", exact=True)
    await invitation.get_by_role("button", name="Hi! How can we help?", exact=True).click()
    await expect(other.page.get_by_role("dialog", name="Chat with Acme Bikes", exact=True)).to_be_visible()
    await expect(invitation).to_be_hidden()
    await expect(other.widget.textbox("Name")).to_be_focused()


async def test_the_invitation_by_keyboard_and_only_on_its_pages(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, embedding_site: EmbeddingSite, browse: Browse
) -> None:
    bridge = await make_bridge(fake_slack, site={**INVITING, "origins": [embedding_site.origin]})
    embedding_site.bridge_url, embedding_site.body = bridge.url, SHOP_PAGE
    elsewhere = await browse(embedding_site.origin + "/about")
    await expect(elsewhere.widget.launcher).to_be_visible()
    await page_ran(elsewhere.page, 1.0)
    await expect(elsewhere.page.get_by_role("dialog", name="Chat invitation")).to_be_hidden()

    visit = await browse(embedding_site.origin + "/pricing/bikes", locale="de-DE")
    page = visit.page
    invitation = page.get_by_role("dialog", name="Chat-Einladung", exact=True)
    await expect(invitation).to_be_visible()
    await expect(invitation.get_by_role("button", name="Hallo! Wie können wir helfen?", exact=True)).to_be_visible()
    # Tab reaches the bubble's buttons; Escape puts it away and leaves the focus on the launcher
    dismiss = invitation.get_by_role("button", name="Ausblenden", exact=True)
    for _ in range(6):
        await page.keyboard.press("Tab")
        if await dismiss.evaluate("e => e.getRootNode().activeElement === e"):
            break
    await expect(dismiss).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(invitation).to_be_hidden()
    await expect(page.get_by_role("button", name="Chat öffnen", exact=True)).to_be_focused()


SHOP_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body><main><h1>Shop</h1><p>Another origin's page with the one-line embed.</p></main>
<script src="{BRIDGE}/widget.js" data-site="acme" async></script>
</body></html>"""

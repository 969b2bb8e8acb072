"""Values checked when the settings are read, not when first used: the snippets file, trusted proxies."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from config.loading import ConfigError, load_settings


def only_problem() -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert len(caught.value.problems) == 1, caught.value.problems
    return caught.value.problems[0]


# -- SITECHAT_SNIPPETS_FILE ------------------------------------------------------------------------

GOOD_SNIPPETS: dict[str, str] = {
    "snippets.toml": 'hello = "Hi! How can I help?"\nbye = """Thanks,\nbye!"""\n',
    "snippets.yaml": "hello: Hi! How can I help?\nbye: |-\n  Thanks,\n  bye!\n",
    "snippets.yml": "hello: 'Hi! How can I help?'\nbye: \"Thanks,\\nbye!\"\n",
}


@pytest.mark.parametrize("name", list(GOOD_SNIPPETS))
def test_snippets_are_read_with_the_settings(env: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text(GOOD_SNIPPETS[name])
    env.setenv("SITECHAT_SNIPPETS_FILE", name)
    assert load_settings().snippets == {"hello": "Hi! How can I help?", "bye": "Thanks,\nbye!"}


def test_no_snippets_file_means_no_snippets(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert load_settings().snippets == {}
    (tmp_path / "empty.yaml").write_text("")
    env.setenv("SITECHAT_SNIPPETS_FILE", "empty.yaml")
    assert load_settings().snippets == {}


# file name → (its bytes, or None for no file; what the one problem line says)
BAD_SNIPPETS: dict[str, tuple[bytes | None, str]] = {
    "missing.toml": (None, "cannot read missing.toml (No such file or directory)"),
    "bad.toml": (b'hello = "unclosed\n', "bad.toml is not valid TOML: "),
    "bad.yaml": (b"hello: [unclosed\n", "bad.yaml is not valid YAML: "),
    "number.toml": (b"hello = 3\n", 'number.toml must map names to texts, e.g. hello = "Hi! How can I help?"'),
    "table.toml": (b'[hello]\ntext = "Hi"\n', "table.toml must map names to texts"),
    "list.yaml": (b"- Hi\n- Bye\n", "list.yaml must map names to texts"),
    "latin1.toml": ('hello = "Grüß Gott"\n'.encode("latin-1"), "latin1.toml is not UTF-8 text"),
}


@pytest.mark.parametrize("name", list(BAD_SNIPPETS))
def test_a_bad_snippets_file_is_one_line_at_start(env: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    content, expected = BAD_SNIPPETS[name]
    if content is not None:
        (tmp_path / name).write_bytes(content)
    env.setenv("SITECHAT_SNIPPETS_FILE", name)
    problem = only_problem()
    assert problem.startswith("SITECHAT_SNIPPETS_FILE: "), problem
    assert expected in problem
    assert "\n" not in problem


def test_a_directory_is_not_a_snippets_file(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "snippets").mkdir()
    env.setenv("SITECHAT_SNIPPETS_FILE", "snippets")
    assert "SITECHAT_SNIPPETS_FILE: cannot read snippets (Is a directory)" in only_problem()


# -- SITECHAT_TRUSTED_PROXIES ----------------------------------------------------------------------


def test_trusted_proxies_are_networks(env: pytest.MonkeyPatch) -> None:
    env.setenv("SITECHAT_TRUSTED_PROXIES", " 127.0.0.1, 10.1.2.3/8,::1 ,2001:db8::/32,")
    assert load_settings().widget.trusted_proxies == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),  # host bits are forgiven: 10.1.2.3/8 is read as 10.0.0.0/8
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("2001:db8::/32"),
    )


def test_no_trusted_proxies_by_default(env: pytest.MonkeyPatch) -> None:
    assert load_settings().widget.trusted_proxies == ()


@pytest.mark.parametrize("bad", ["proxy.internal", "10.0.0.300", "10.0.0.0/33", "127.0.0.1:8080"])
def test_a_bad_trusted_proxy_is_named(env: pytest.MonkeyPatch, bad: str) -> None:
    env.setenv("SITECHAT_TRUSTED_PROXIES", f"10.0.0.0/8, {bad}")
    problem = only_problem()
    assert problem.startswith(f"SITECHAT_TRUSTED_PROXIES: {bad!r} is not an IP address or network"), problem
    assert "for example SITECHAT_TRUSTED_PROXIES=127.0.0.1,10.0.0.0/8" in problem


def test_each_bad_trusted_proxy_is_its_own_line(env: pytest.MonkeyPatch) -> None:
    env.setenv("SITECHAT_TRUSTED_PROXIES", "lb1.internal,10.0.0.1,lb2.internal")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert [p.split(" is not")[0] for p in caught.value.problems] == [
        "SITECHAT_TRUSTED_PROXIES: 'lb1.internal'",
        "SITECHAT_TRUSTED_PROXIES: 'lb2.internal'",
    ]


def test_the_widget_server_compares_with_networks_parsed_once(
    env: pytest.MonkeyPatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    from widget_server.context import WidgetContext

    env.setenv("SITECHAT_TRUSTED_PROXIES", "10.0.0.0/8,::1")
    settings = load_settings()
    ctx = WidgetContext(
        conversations=None,  # type: ignore[arg-type]
        live=None,  # type: ignore[arg-type]
        sites=settings.sites,
        public_url=settings.widget.public_url,
        endpoints=frozenset(),
        trusted_proxies=settings.widget.trusted_proxies,
    )

    def no_parsing(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a network parsed per request")

    monkeypatch.setattr(ipaddress, "ip_network", no_parsing)

    def address(peer: str, forwarded: str = "") -> str:
        request = SimpleNamespace(remote=peer, headers={"X-Forwarded-For": forwarded} if forwarded else {})
        return ctx.client_address(request)  # type: ignore[arg-type]

    assert address("10.9.8.7", "203.0.113.5") == "203.0.113.5"
    assert address("10.9.8.7", "198.51.100.1, 203.0.113.5, 10.0.0.2") == "203.0.113.5"
    assert address("::1", "203.0.113.5") == "203.0.113.5"
    assert address("::ffff:10.9.8.7", "203.0.113.5") == "203.0.113.5"  # IPv4 seen through an IPv6 socket
    assert address("192.0.2.1", "203.0.113.5") == "192.0.2.1"  # not a trusted proxy: its header is not believed
    assert address("10.9.8.7") == "10.9.8.7"

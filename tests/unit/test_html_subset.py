"""The HTML subset every formatted message carries (CONTRACT §7): one table per direction. Pure."""

from __future__ import annotations

import pytest

from adapters.html_subset import has_formatting, plain_text, sanitize, strict

A = 'target="_blank" rel="noopener noreferrer nofollow"'

# -- any HTML → the subset: what survives, and what never does ----------------------------------

SANITIZE: dict[str, str] = {
    # the subset itself stays as it is
    "<p>Hi <strong>Ann</strong></p>": "<p>Hi <strong>Ann</strong></p>",
    "<em>a</em><del>b</del><code>c</code>": "<em>a</em><del>b</del><code>c</code>",
    "<pre><code>x = 1\n  y</code></pre>": "<pre><code>x = 1\n  y</code></pre>",
    "<blockquote>q</blockquote>": "<blockquote>q</blockquote>",
    "<ul><li>a<ol><li>b</li></ol></li></ul>": "<ul><li>a<ol><li>b</li></ol></li></ul>",
    "line<br>break<br/>again": "line<br>break<br>again",
    # other HTML's marks read as the subset's
    "<b>bold</b> <i>it</i> <s>x</s> <strike>y</strike> <u>u</u>": (
        "<strong>bold</strong> <em>it</em> <del>x</del> <del>y</del> <em>u</em>"
    ),
    "<h1>Title</h1>text": "<p><strong>Title</strong></p>text",
    # links: only absolute web links, always opened apart and told nothing
    '<a href="https://acme.example/a?b=1&amp;c=2">docs</a>': (
        f'<a href="https://acme.example/a?b=1&amp;c=2" {A}>docs</a>'
    ),
    '<a href="HTTP://ACME.example">up</a>': f'<a href="HTTP://ACME.example" {A}>up</a>',
    '<a href="https://x.example" target="_self" rel="opener" class="c" id="i">x</a>': (
        f'<a href="https://x.example" {A}>x</a>'
    ),
    '<a href="javascript:alert(1)">js</a>': "js",
    '<a href=" JaVaScRiPt:alert(1)">js2</a>': "js2",
    '<a href="jav&#x09;ascript:alert(1)">tab</a>': "tab",
    '<a href="data:text/html,&lt;script&gt;">data</a>': "data",
    '<a href="vbscript:x">vb</a>': "vb",
    '<a href="/relative">rel</a>': "rel",
    '<a href="//evil.example/x">schemeless</a>': "schemeless",
    '<a href="mailto:a@b.example">mail</a>': "mail",
    "<a>bare</a>": "bare",
    # hostile markup: inert, and scripts and styles gone with their content
    "<script>alert(1)</script>ok": "ok",
    "<style>p{color:red}</style>ok": "ok",
    '<img src="x" onerror="alert(1)">after': "after",
    '<iframe src="https://evil.example">frame text</iframe>': "frame text",
    "<svg><script>alert(1)</script><a href='https://e.example'>s</a></svg>t": "t",
    '<svg onload="alert(1)"><circle/></svg>svg': "svg",
    "<math><mi>x</mi></math>m": "m",
    '<p onclick="alert(1)" style="position:fixed">p</p>': "<p>p</p>",
    '<strong onmouseover="x()">hover</strong>': "<strong>hover</strong>",
    "<object data=x>o</object><embed src=x>": "o",
    '<form action="https://evil.example"><input name=x><button>b</button></form>': "b",
    "<!-- a comment -->c": "c",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">': '"&gt;',
    "<template><script>alert(1)</script></template>tpl": "tpl",
    '<meta http-equiv="refresh" content="0;url=https://evil.example">m': "m",
    "<table><tr><td>cell</td></tr></table>": "cell",
    "&lt;b&gt;not a tag&lt;/b&gt; &amp;": "&lt;b&gt;not a tag&lt;/b&gt; &amp;",
    "<div>in a div</div><span>span</span>": "in a divspan",
}


@pytest.mark.parametrize(("given", "expected"), SANITIZE.items(), ids=range(len(SANITIZE)))
def test_sanitize(given: str, expected: str) -> None:
    assert sanitize(given) == expected
    # cleaning twice changes nothing: what the subset keeps is already the subset
    assert strict(expected) == expected


# -- the subset → plain text -------------------------------------------------------------------

PLAIN: dict[str, str] = {
    "<p>Hi <strong>Ann</strong> &amp; co</p>": "Hi Ann & co",
    "<p>one</p><p>two</p>": "one\ntwo",
    "a<br>b": "a\nb",
    f'<a href="https://x.example/docs" {A}>the docs</a>': "the docs (https://x.example/docs)",
    f'<a href="https://x.example/" {A}>https://x.example/</a>': "https://x.example/",
    "<ul><li>one</li><li>two</li></ul>": "• one\n• two",
    "<ol><li>first</li><li>second</li></ol>": "1. first\n2. second",
    "<ul><li>a<ol><li>x</li><li>y</li></ol></li><li>b</li></ul>": "• a\n  1. x\n  2. y\n• b",
    "<p>before</p><blockquote>quoted<br>more</blockquote><p>after</p>": "before\nquoted\nmore\nafter",
    "<pre>code *stays*\n  indented</pre>": "code *stays*\n  indented",
    "<code>&lt;tag&gt;</code>": "<tag>",
    "<del>gone</del> <em>it</em>": "gone it",
    "": "",
}


@pytest.mark.parametrize(("given", "expected"), PLAIN.items(), ids=range(len(PLAIN)))
def test_plain_text(given: str, expected: str) -> None:
    assert plain_text(given) == expected


@pytest.mark.parametrize(
    ("given", "formatted"),
    [
        ("<p>just words</p>", False),
        ("a<br>b", False),
        ("<p><strong>b</strong></p>", True),
        (f'<a href="https://x.example" {A}>x</a>', True),
        ("<ul><li>x</li></ul>", True),
        ("<pre>x</pre>", True),
    ],
)
def test_has_formatting(given: str, formatted: bool) -> None:
    assert has_formatting(given) is formatted


def test_tables_are_big_enough() -> None:
    assert len(SANITIZE) >= 35 and len(PLAIN) >= 12

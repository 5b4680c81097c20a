"""A scorer's `homepage` (and any record URL) becomes a link only when it is http(s): refused
at load otherwise, and never rendered as a link if one slips through."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coop.scoring.validate import ContractViolation, check_contract
from coop.types import is_web_url
from coop.web.templating import TEMPLATES
from tests.scoring.test_validate import Good

HOSTILE = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "javascript://example.org/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/x",
    "/relative",
    "https:evil.example",
    "http://",
    "https://exa mple.org",
    "https://example.org/\x00",
    "https://example.org\\@evil.example",
    "file:///etc/passwd",
    "ftp://example.org/",
]
SAFE = ["https://example.org/scorer", "http://example.org", "https://example.org/a?b=c#d"]


@pytest.mark.parametrize("homepage", HOSTILE)
def test_a_scorer_with_a_non_http_homepage_is_refused_at_load(homepage: str) -> None:
    scorer = type("Hostile", (Good,), {"homepage": homepage})()
    with pytest.raises(ContractViolation, match="homepage"):
        check_contract(scorer)


@pytest.mark.parametrize("homepage", [*SAFE, ""])
def test_http_homepages_and_none_load(homepage: str) -> None:
    scorer = type("Fine", (Good,), {"homepage": homepage})()
    assert check_contract(scorer).homepage == homepage


def _contribution(url: str) -> str:
    record = SimpleNamespace(url=url, title="the post")
    item = SimpleNamespace(record_id="r", amount=1.0, reason="because")
    template = TEMPLATES.env.get_template("_contribution.html")
    return template.render(c=item, records={"r": record})


@pytest.mark.parametrize("url", HOSTILE)
def test_a_record_url_that_is_not_http_is_shown_without_a_link(url: str) -> None:
    html = _contribution(url)
    assert "href" not in html and "because" in html


@pytest.mark.parametrize("url", SAFE)
def test_an_http_record_url_is_a_link(url: str) -> None:
    assert 'href="' in _contribution(url)


@given(st.text(max_size=40))
def test_only_http_and_https_urls_with_a_host_pass(value: str) -> None:
    for prefix in ("", "https://example.org/", "javascript:", "//"):
        candidate = prefix + value
        if is_web_url(candidate):
            assert candidate.lower().startswith(("http://", "https://"))
            assert not any(ord(c) <= 0x20 for c in candidate)

"""The header marks the section of every page, detail pages included."""

from __future__ import annotations

import pytest

from coop.web.templating import active_nav_for


@pytest.mark.parametrize(
    ("path", "section"),
    [
        ("/", "scores"),
        ("/scores/reach", "scores"),
        ("/connectors", "connectors"),
        ("/connections/5f0c", "connectors"),
        ("/apps", "apps"),
        ("/developer", "developer"),
        ("/developer/tokens", "developer"),
        ("/access-log", "access_log"),
        ("/cooperative", "cooperative"),
        ("/scoresheet", None),
    ],
)
def test_every_page_marks_its_section_in_the_navigation(path: str, section: str | None) -> None:
    assert active_nav_for(path) == section

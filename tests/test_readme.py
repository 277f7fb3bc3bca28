"""The README is the front door: short, and every link in it leads to a file of the repository."""

from __future__ import annotations

import re

from tests.liveserver import ROOT

README = ROOT / "README.md"


def test_the_readme_stays_a_front_door() -> None:
    assert README.stat().st_size <= 8 * 1024


def test_the_readme_links_every_page_of_the_docs() -> None:
    text = README.read_text()
    pages = [page for page in (ROOT / "docs").glob("*.md") if page.name != "client.md"]
    assert pages
    for page in pages:
        assert f"](docs/{page.name})" in text, page.name
    assert "](sumclient/README.md)" in text  # what docs/client.md shows


def test_every_link_of_the_readme_leads_to_a_file() -> None:
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    assert targets
    for target in targets:
        assert (ROOT / target).is_file(), target

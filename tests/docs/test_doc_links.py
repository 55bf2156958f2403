"""Every link between the pages (README.md, docs/*.md) leads to a file and heading that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devhost.processes import PROJECT_ROOT
from tests.docs.conftest import PAGES

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


def _prose_lines(path: Path) -> list[str]:
    """The page's lines outside fenced blocks."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(path: Path) -> set[str]:
    """Heading anchors as GitHub makes them: lower case, no punctuation, spaces as hyphens, -N repeats."""
    seen: dict[str, int] = {}
    result: set[str] = set()
    for line in _prose_lines(path):
        heading = _HEADING.match(line)
        if not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group("title").lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def broken_links(page: Path) -> list[str]:
    problems = []
    for line in _prose_lines(page):
        for match in _LINK.finditer(line):
            target = match.group("target")
            if re.match(r"^[a-z]+:", target):
                continue  # another site: not checked here (no network in the tests)
            file_part, _, anchor = target.partition("#")
            linked = (page.parent / file_part).resolve() if file_part else page
            if not linked.exists():
                problems.append(f"{target}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                problems.append(f"{target}: no heading with the anchor #{anchor} in {linked.name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.relative_to(PROJECT_ROOT).as_posix())
def test_links_lead_to_existing_pages_and_headings(page: Path) -> None:
    assert not broken_links(page)


def test_link_to_a_missing_heading_is_reported(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Title\n\n## Running the parts yourself\n")
    (tmp_path / "page.md").write_text("[ok](other.md#running-the-parts-yourself) [bad](other.md#nothing)\n")
    assert broken_links(tmp_path / "page.md") == [
        "other.md#nothing: no heading with the anchor #nothing in other.md"
    ]


def test_link_to_a_missing_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "page.md").write_text("See [there](docs/gone.md).\n```sh\n[not a link](x.md)\n```\n")
    assert broken_links(tmp_path / "page.md") == ["docs/gone.md: no such file"]

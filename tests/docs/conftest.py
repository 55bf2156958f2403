"""The doc tests' session: one `make start` stack (started on first use) and one run per page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.processes import PROJECT_ROOT, StartupError
from devhost.stack import StackPorts
from tests.docs.doc_blocks import Block, read_blocks
from tests.docs.doc_runner import MakeStartStack, PageRun, PortMap, project_copy

PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]


def page_blocks() -> dict[str, list[Block]]:
    """Every page's fenced blocks, README.md first."""
    return {path.relative_to(PROJECT_ROOT).as_posix(): read_blocks(path, PROJECT_ROOT) for path in PAGES}


class DocSession:
    """What the doc tests share: the stack and the page runs, stopped (by PID) when the session ends."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._blocks = page_blocks()
        self._stack: MakeStartStack | None = None
        self._stack_error: StartupError | None = None
        self._pages: dict[str, PageRun] = {}

    def _copy(self, name: str, ports: PortMap) -> Path:
        return project_copy(self._tmp.mktemp(name), ports)

    def stack(self) -> MakeStartStack:
        """`make start`, started once; a start-up failure is raised again for every block that needs it."""
        if self._stack_error is not None:
            raise self._stack_error
        if self._stack is None:
            ports = PortMap(StackPorts.free())
            stack = MakeStartStack(self._copy("make-start", ports), ports)
            try:
                stack.start()
            except StartupError as exc:
                self._stack_error = exc
                raise
            self._stack = stack
        return self._stack

    def page(self, page: str) -> PageRun:
        """The run of a page; servers of the other pages are stopped first (one page's servers at a time)."""
        for name, run in self._pages.items():
            if name != page:
                run.close()
        if page not in self._pages:
            slug = page.replace("/", "-").removesuffix(".md")
            self._pages[page] = PageRun(
                self._blocks[page],
                workspace_factory=lambda ports: self._copy(f"page-{slug}", ports),
                stack_factory=self.stack,
            )
        return self._pages[page]

    def close(self) -> None:
        for run in self._pages.values():
            run.close()
        if self._stack is not None:
            self._stack.stop()


@pytest.fixture(scope="session")
def doc_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocSession]:
    session = DocSession(tmp_path_factory)
    try:
        yield session
    finally:
        session.close()

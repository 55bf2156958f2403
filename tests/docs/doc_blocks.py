"""The fenced blocks of README.md and docs/*.md, the doc-test markers on them, and output matching.

A marker is an HTML comment on the line right before the fence (invisible when the page is rendered):

    <!-- doc-test: run -->             run it (sh/bash in a new bash, python with the venv's python)
    <!-- doc-test: server 8080 -->     a long-running server (sh/bash): started in the background, ready
                                       when every port listed accepts connections, stopped at the page's end
    <!-- doc-test: stack -->           needs `make start`: run against the stack the doc tests start
    <!-- doc-test: skip (REASON) -->   not run here; the reason is mandatory and shows in the report
    <!-- doc-test: output -->          (text/console) what the previous executed block prints
    <!-- doc-test: stack-output -->    (text/console) what `make start` prints
    <!-- doc-test: file NAME -->       (any language) saved as NAME in the page's copy of the project

sh, bash and python blocks must carry a marker; text, console and json blocks are shown, not run,
unless marked output, stack-output or file. A fence without a language is refused, so that a command
cannot hide in an unlabelled block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

EXECUTABLE = {"sh": "shell", "bash": "shell", "shell": "shell", "python": "python", "py": "python"}
SHOWN = {"text", "console", "json"}
KINDS = ("run", "server", "stack", "skip", "output", "stack-output", "file")
RUNNABLE_KINDS = {"run", "server", "stack"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)[^`]*$")
_MARKER = re.compile(r"^\s*<!--\s*doc-test:\s*(?P<body>.*?)\s*-->\s*$")
_SKIP = re.compile(r"^skip\s*\((?P<reason>.*)\)$")


class MarkerError(ValueError):
    """A doc-test marker that cannot be read; the message says what is wrong and how to write it."""


@dataclass(frozen=True)
class Marker:
    kind: str
    reason: str = ""
    ports: tuple[int, ...] = ()
    filename: str = ""


@dataclass(frozen=True)
class Block:
    page: str  # path relative to the project root, e.g. "docs/app.md"
    line: int  # line of the opening fence, 1-based
    language: str
    text: str
    marker_text: str | None  # the comment's body, None without a marker

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runtime(self) -> str | None:
        """ "shell" or "python" for blocks a user runs, None for shown ones."""
        return EXECUTABLE.get(self.language.lower())

    def marker(self) -> Marker | None:
        """The parsed marker (None when there is none); MarkerError when it is malformed."""
        return None if self.marker_text is None else parse_marker(self.marker_text)


def parse_marker(body: str) -> Marker:
    """`run`, `stack`, `server PORT...`, `skip (REASON)`, `output`, `stack-output` or `file NAME`."""
    words = body.split()
    kind = words[0] if words else ""
    if kind == "skip" or kind.startswith("skip("):
        match = _SKIP.match(body)
        reason = match.group("reason").strip() if match else ""
        if not reason:
            raise MarkerError(f"{body!r}: write the reason in parentheses, e.g. `skip (needs Azure)`")
        return Marker("skip", reason=reason)
    if kind == "server":
        if len(words) < 2 or not all(word.isdigit() for word in words[1:]):
            raise MarkerError(f"{body!r}: name the ports the server listens on, e.g. `server 8080`")
        return Marker("server", ports=tuple(int(word) for word in words[1:]))
    if kind == "file":
        if len(words) != 2:
            raise MarkerError(f"{body!r}: name the file, e.g. `file emulator.json`")
        return Marker("file", filename=words[1])
    if kind in KINDS and len(words) == 1:
        return Marker(kind)
    raise MarkerError(f"{body!r} is not a doc-test marker; use one of: {', '.join(KINDS)}")


def read_blocks(path: Path, root: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order, with the marker on the line before it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    page = path.relative_to(root).as_posix()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, indent = opening.group("fence"), len(opening.group("indent"))
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not _closes(lines[end], fence):
            body.append(_dedent(lines[end], indent))
            end += 1
        marker = _MARKER.match(lines[index - 1]) if index > 0 else None
        blocks.append(
            Block(
                page=page,
                line=index + 1,
                language=opening.group("info"),
                text="\n".join(body) + "\n",
                marker_text=marker.group("body") if marker else None,
            )
        )
        index = end + 1
    return blocks


def _dedent(line: str, indent: int) -> str:
    """The line without the fence's indentation (a block inside a list item is indented with it)."""
    prefix = len(line) - len(line.lstrip(" \t"))
    return line[min(prefix, indent) :]


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}


def block_problem(block: Block) -> str | None:
    """Why a block is not acceptable to the doc tests, or None."""
    try:
        marker = block.marker()
    except MarkerError as exc:
        return f"{block.id}: {exc}"
    language = block.language.lower()
    if not language:
        return (
            f"{block.id}: the fence has no language; use sh/bash/python for commands (with a doc-test "
            "marker) or text/console/json for output"
        )
    if block.runtime is None and language not in SHOWN and (marker is None or marker.kind != "file"):
        return (
            f"{block.id}: language {block.language!r} is neither run (sh, bash, python) "
            "nor shown (text, console, json)"
        )
    if block.runtime is not None and marker is None:
        return (
            f"{block.id}: a {block.language} block needs a marker on the line before its fence: "
            "<!-- doc-test: run --> (or server PORT..., stack, skip (REASON))"
        )
    if marker is None:
        return None
    if marker.kind in RUNNABLE_KINDS and block.runtime is None:
        return f"{block.id}: `{marker.kind}` is for sh/bash/python blocks, not {block.language!r}"
    if marker.kind in ("server",) and block.runtime != "shell":
        return f"{block.id}: a server block must be sh or bash"
    if marker.kind in ("output", "stack-output") and language not in ("text", "console"):
        return f"{block.id}: `{marker.kind}` is for text or console blocks"
    return None


def output_block_problems(blocks: list[Block]) -> list[str]:
    """An `output` block must follow an executed block of its page (prose may come between)."""
    problems: list[str] = []
    previous_runnable: Block | None = None
    for block in blocks:
        kind = _kind(block)
        if kind in RUNNABLE_KINDS or kind == "skip":
            previous_runnable = block
        elif kind == "output" and (previous_runnable is None or _kind(previous_runnable) == "skip"):
            problems.append(f"{block.id}: an `output` block must come after a run or stack block")
    return problems


def _kind(block: Block) -> str | None:
    try:
        marker = block.marker()
    except MarkerError:
        return None
    return marker.kind if marker else None


# --- expected output -----------------------------------------------------------------------------------

ELLIPSIS = "..."


def _normalised_lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def output_pattern(expected: str) -> re.Pattern[str]:
    """The regex an expected-output block stands for.

    The block's lines must appear in the output in order and next to each other; a line that is only
    `...` stands for any number of lines, and `...` inside a line for any text within that line.
    Trailing spaces and blank lines at either end do not count.
    """
    parts: list[str] = []
    for line in _normalised_lines(expected):
        if line.strip() == ELLIPSIS:
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*".join(re.escape(piece) for piece in line.split(ELLIPSIS)) + r"\n")
    return re.compile(r"(?:^|\n)" + "".join(parts))


def output_matches(expected: str, actual: str) -> bool:
    """Whether `actual` contains the lines of `expected` as `output_pattern` describes."""
    text = "\n".join(_normalised_lines(actual)) + "\n"
    return output_pattern(expected).search(text) is not None

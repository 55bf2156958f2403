"""How the doc tests read pages: markers, fences, expected output and port rewriting."""

from __future__ import annotations

from pathlib import Path

import pytest

from devhost.processes import PROJECT_ROOT
from devhost.stack import StackPorts
from tests.docs.doc_blocks import (
    Block,
    MarkerError,
    block_problem,
    output_block_problems,
    output_matches,
    parse_marker,
    read_blocks,
)
from tests.docs.doc_runner import PortMap, make_start_argv


def _page(tmp_path: Path, text: str) -> list[Block]:
    (tmp_path / "page.md").write_text(text)
    return read_blocks(tmp_path / "page.md", tmp_path)


def test_marker_on_the_line_before_the_fence_belongs_to_the_block(tmp_path: Path) -> None:
    (block,) = _page(tmp_path, "Text\n<!-- doc-test: run -->\n```sh\necho hi\n```\n")
    assert (block.line, block.language, block.text, block.marker_text) == (3, "sh", "echo hi\n", "run")


def test_marker_separated_by_a_blank_line_does_not_count(tmp_path: Path) -> None:
    (block,) = _page(tmp_path, "<!-- doc-test: run -->\n\n```sh\necho hi\n```\n")
    assert block.marker_text is None
    assert "needs a marker" in (block_problem(block) or "")


def test_shell_block_without_marker_is_a_problem(tmp_path: Path) -> None:
    (block,) = _page(tmp_path, "```bash\nmake test\n```\n")
    assert "needs a marker" in (block_problem(block) or "")


def test_python_block_without_marker_is_a_problem(tmp_path: Path) -> None:
    (block,) = _page(tmp_path, "```python\nprint(1)\n```\n")
    assert "needs a marker" in (block_problem(block) or "")


def test_fence_without_language_is_a_problem(tmp_path: Path) -> None:
    (block,) = _page(tmp_path, "```\nmake start\n```\n")
    assert "has no language" in (block_problem(block) or "")


def test_text_console_and_json_blocks_need_no_marker(tmp_path: Path) -> None:
    blocks = _page(tmp_path, "```text\na\n```\n```console\n$ b\n```\n```json\n{}\n```\n")
    assert [block_problem(block) for block in blocks] == [None, None, None]


def test_unknown_language_is_a_problem(tmp_path: Path) -> None:
    (block,) = _page(tmp_path, "```powershell\nGet-Item .\n```\n")
    assert "neither run" in (block_problem(block) or "")


def test_block_inside_a_list_item_loses_the_item_indentation(tmp_path: Path) -> None:
    (block,) = _page(tmp_path, "- step\n  <!-- doc-test: run -->\n  ```sh\n  echo a\n    echo b\n  ```\n")
    assert block.text == "echo a\n  echo b\n"


def test_skip_needs_a_reason() -> None:
    with pytest.raises(MarkerError, match="reason"):
        parse_marker("skip")


def test_skip_keeps_its_reason() -> None:
    assert parse_marker("skip (needs Azure)").reason == "needs Azure"


def test_server_names_its_ports() -> None:
    assert parse_marker("server 10000 10002").ports == (10000, 10002)


def test_server_without_ports_is_refused() -> None:
    with pytest.raises(MarkerError, match="ports"):
        parse_marker("server")


def test_unknown_marker_is_refused() -> None:
    with pytest.raises(MarkerError, match="not a doc-test marker"):
        parse_marker("maybe")


def test_output_block_before_any_command_is_a_problem(tmp_path: Path) -> None:
    blocks = _page(tmp_path, "<!-- doc-test: output -->\n```text\nhi\n```\n")
    assert output_block_problems(blocks)


def test_output_lines_must_appear_in_order() -> None:
    assert output_matches("a\nb", "x\na\nb\ny\n")
    assert not output_matches("b\na", "a\nb\n")


def test_output_lines_must_be_adjacent_unless_an_ellipsis_line_is_between() -> None:
    assert not output_matches("a\nc", "a\nb\nc\n")
    assert output_matches("a\n...\nc", "a\nb\nb2\nc\n")


def test_ellipsis_inside_a_line_matches_any_text_of_that_line_only() -> None:
    assert output_matches('{"id": "..."} -> 200', '{"id": "m123"} -> 200\n')
    assert not output_matches("a...c", "ab\nc\n")


def test_output_ignores_carriage_returns_and_trailing_spaces() -> None:
    assert output_matches("HTTP/1.1 200 OK\nAllow: x", "HTTP/1.1 200 OK  \r\nAllow: x\r\n")


def test_expected_line_must_match_a_whole_line() -> None:
    assert not output_matches("200", "-> 200\n")


def test_documented_ports_are_rewritten_everywhere_in_a_text() -> None:
    ports = PortMap(StackPorts(40001, 40002, 40003, 40004, 40005))
    text = "localhost:7071 --port 8080 10000-10002 10001 17071 1.8080"
    assert ports.rewrite(text) == "localhost:40001 --port 40002 40003-40005 40004 17071 1.8080"


def test_development_storage_becomes_azurite_on_the_rewritten_ports() -> None:
    ports = PortMap(StackPorts(40001, 40002, 40003, 40004, 40005))
    rewritten = ports.rewrite('"AzureWebJobsStorage": "UseDevelopmentStorage=true"')
    assert "TableEndpoint=http://127.0.0.1:40005/devstoreaccount1;" in rewritten
    assert "BlobEndpoint=http://127.0.0.1:40003/devstoreaccount1;" in rewritten


def test_make_start_is_read_from_the_makefile(tmp_path: Path) -> None:
    makefile = "PY := .venv/bin/python\nstart: setup\n\t$(PY) -m devhost.stack $(STACK_ARGS)\n\nbench:\n\tx\n"
    argv = make_start_argv(makefile, tmp_path)
    assert argv == [str(tmp_path / ".venv" / "bin" / "python"), "-m", "devhost.stack"]


def test_make_start_with_an_unknown_variable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="update make_start_argv"):
        make_start_argv("start: setup\n\t$(PY) -m devhost.stack $(MORE)\n", tmp_path)


def test_the_projects_make_start_runs_the_stack_module() -> None:
    argv = make_start_argv((PROJECT_ROOT / "Makefile").read_text(), PROJECT_ROOT)
    assert argv[1:3] == ["-m", "devhost.stack"]

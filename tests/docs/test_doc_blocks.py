"""The commands of README.md and docs/*.md, run as the pages say (see doc_blocks and doc_runner).

Every sh/bash/python block is run or skipped with its stated reason; an unmarked one fails
`test_every_block_is_run_or_skipped_with_a_reason`, so a new page cannot slip past these tests.
"""

from __future__ import annotations

import pytest

from tests.docs.conftest import DocSession, page_blocks
from tests.docs.doc_blocks import Block, block_problem, output_block_problems

BLOCKS = page_blocks()
TESTED_KINDS = {"run", "server", "stack", "skip", "stack-output"}


def _tested(block: Block) -> bool:
    if block_problem(block) is not None:
        return False
    marker = block.marker()
    return marker is not None and marker.kind in TESTED_KINDS


@pytest.mark.parametrize("page", list(BLOCKS))
def test_every_block_is_run_or_skipped_with_a_reason(page: str) -> None:
    blocks = BLOCKS[page]
    problems = [problem for block in blocks if (problem := block_problem(block))]
    problems += output_block_problems(blocks)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "block", [b for blocks in BLOCKS.values() for b in blocks if _tested(b)], ids=lambda b: b.id
)
def test_block_works_as_the_page_says(block: Block, doc_session: DocSession) -> None:
    marker = block.marker()
    assert marker is not None
    if marker.kind == "skip":
        pytest.skip(f"{block.id}: {marker.reason}")
    doc_session.page(block.page).run_through(block)

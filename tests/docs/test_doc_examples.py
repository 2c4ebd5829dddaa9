"""Every shell and Python block of docs/**/*.md runs, page by page, as docs/dev/doc-examples.md says.

One test per page: its blocks in order, in a fresh folder (with the repository's examples/
and scripts/) and a fresh MODELBUNDLE_HOME, against real servers the page starts. A block
marked ``skip`` is not run; it is printed with its reason at the end of the session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from docs._blocks import Page, parse_page
from docs._page_runner import SUBSTITUTIONS, PageRunner
from docs.conftest import REPO, SKIPPED, page_environment, page_folder

DOCS = REPO / "docs"


def pages() -> list[Page]:
    parsed = (parse_page(path) for path in sorted(DOCS.rglob("*.md")))
    return [page for page in parsed if page.runnable]


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.path.relative_to(DOCS)))
def test_the_page_s_examples_run(page: Page, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    folder = page_folder(tmp_path / "work")
    runner = PageRunner(folder, page_environment(tmp_path / "home", page.fixtures, request), SUBSTITUTIONS)
    try:
        for block in page.runnable:
            if block.skip is not None:
                SKIPPED.append(f"{block.page.relative_to(REPO)}:{block.line}: {block.skip}")
                print(f"not run: {block.where}: {block.skip}")
                continue
            runner.run(block)
    finally:
        runner.close()

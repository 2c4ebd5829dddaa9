"""The doc-example harness itself: what it runs, and that a wrong example fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from docs._blocks import DocsTestError, parse_page
from docs._page_runner import SUBSTITUTIONS, DocExampleFailed, PageRunner
from docs.conftest import page_environment

FENCE = "```"
PAGE = f"""\
# A page

{FENCE}python title="greet.py"
def greet(name):
    return f"hello {{name}}"
{FENCE}

{FENCE}python
from greet import greet
message = greet("docs")
{FENCE}

{FENCE}python
print(message.upper())
{FENCE}

{FENCE}text title="Output"
HELLO DOCS
{FENCE}

{FENCE}console
$ export WHO=shell
$ echo "hello $WHO" && python -c 'print(6 * 7)'
hello shell
42
$ ls greet.py missing.py  # exits 2
greet.py
{FENCE}

<!-- docs-test: skip needs a cluster -->
{FENCE}bash
kubectl apply -f k8s/
{FENCE}

{FENCE}yaml
not: run
{FENCE}
"""


def run_page(text: str, tmp_path: Path, request: pytest.FixtureRequest) -> list[str]:
    page = parse_page(tmp_path / "page.md", text)
    folder = tmp_path / "work"
    folder.mkdir()
    runner = PageRunner(folder, page_environment(tmp_path / "home", [], request), SUBSTITUTIONS)
    skipped = []
    try:
        for block in page.runnable:
            if block.skip is not None:
                skipped.append(block.skip)
            else:
                runner.run(block)
    finally:
        runner.close()
    return skipped


def test_a_page_runs_in_order_with_files_shared_namespace_shell_state_and_outputs(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    page = parse_page(tmp_path / "page.md", PAGE)
    assert [b.kind for b in page.blocks] == ["file", "python", "python", "output", "console", "shell", "other"]
    assert [c.exit_status for c in page.blocks[4].commands()] == [0, 0, 2]
    assert run_page(PAGE, tmp_path, request) == ["needs a cluster"]
    assert (tmp_path / "work" / "greet.py").is_file()


@pytest.mark.parametrize(
    ("wrong", "said"),
    [
        ("HELLO DOCS\n", "HELLO THERE\n"),  # a Python block's shown output
        ("hello shell\n", "hello world\n"),  # a console command's shown output
        ("# exits 2", ""),  # a command that fails where the page says it succeeds
        ("print(message.upper())", "print(mesage.upper())"),  # a Python block that raises
    ],
)
def test_an_example_that_no_longer_does_what_the_page_says_fails(
    wrong: str, said: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    assert wrong in PAGE
    with pytest.raises(DocExampleFailed, match=r"page\.md:\d+"):
        run_page(PAGE.replace(wrong, said), tmp_path, request)


def test_a_background_block_is_up_before_the_next_runs_and_stopped_at_the_end(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    page = f"""\
<!-- docs-test: background http://127.0.0.1:3000/ -->
{FENCE}console
$ python -m http.server "$MODELBUNDLE_PORT" --bind 127.0.0.1
{FENCE}

{FENCE}console
$ curl -s -o /dev/null -w '%{{http_code}}\\n' http://127.0.0.1:3000/
200
{FENCE}
"""
    assert run_page(page, tmp_path, request) == []


def test_a_background_command_that_exits_fails_the_page_with_its_output(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    page = f"""\
<!-- docs-test: background -->
{FENCE}bash
python -c 'raise SystemExit("no such model")'
{FENCE}
"""
    with pytest.raises(DocExampleFailed, match=r"it exited:\n.*no such model"):
        run_page(page, tmp_path, request)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("<!-- docs-test: skip -->\n```bash\ntrue\n```\n", "needs a reason"),
        ("<!-- docs-test: frobnicate -->\n", "unknown directive"),
        ('<!-- docs-test: replace "a" -->\n', "two quoted strings"),
        ("<!-- docs-test: background -->\n```yaml\na: 1\n```\n", "not run"),
    ],
)
def test_a_misused_convention_is_an_error_naming_the_line(text: str, error: str, tmp_path: Path) -> None:
    with pytest.raises(DocsTestError, match=error):
        parse_page(tmp_path / "page.md", text)

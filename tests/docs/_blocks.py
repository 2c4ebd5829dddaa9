"""The code blocks of a Markdown page that the doc-example tests run, in page order.

The conventions (docs/dev/doc-examples.md says them for writers):

- ```` ```python ````: run, in one interpreter per page (one namespace for the page's blocks).
- ```` ```bash ```` / ``sh`` / ``shell``: each command run in one bash per page (cwd and variables carry
  over); one command per line, a trailing ``\\`` or a here-document continues it.
- ```` ```console ````: ``$ `` lines are commands (``> `` or a trailing ``\\`` continues one);
  the lines under a command are its expected output, compared loosely (``...`` matches anything).
- any block with ``title="NAME"`` (``title="Output"`` aside) is a file: written to NAME, not run.
- ```` ```text title="Output" ```` right after a run block: that block's expected output.
- ``<!-- docs-test: ... -->`` comments (invisible on the site) steer the next block or the page:
  ``skip REASON``, ``background [URL]``, ``stop``, ``fixture NAME``, ``replace "OLD" "NEW"``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

RUN_LANGUAGES = {"python": "python", "py": "python", "bash": "shell", "sh": "shell", "shell": "shell", "console": "console"}
OUTPUT_TITLE = "Output"
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*)(?P<info>.*)$")
_TITLE = re.compile(r'title="([^"]*)"')
_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<body>.*?)\s*-->\s*$")
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")
_EXIT = re.compile(r"#\s*exits?\s+(\d+)\s*$")


class DocsTestError(ValueError):
    """A page breaks the doc-example conventions (an unknown directive, a skip without a reason...)."""


@dataclass
class Command:
    text: str
    expected_output: list[str] = field(default_factory=list)
    exit_status: int = 0  # from a trailing `# exits N` comment


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    kind: str  # "python", "shell", "console", "file", "output" or "other"
    code: str
    title: str | None = None
    skip: str | None = None  # the reason it is not run
    background: str | None = None  # "" for the page's /readyz, else the URL that answers once it is up
    stop_before: bool = False  # stop the page's background commands before this block
    replacements: list[tuple[str, str]] = field(default_factory=list)  # page-wide, in force at this block
    expected_output: list[str] = field(default_factory=list)  # from a following "Output" block

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    def commands(self) -> list[Command]:
        """The shell commands of a ``shell`` or ``console`` block."""
        return console_commands(self.code) if self.kind == "console" else shell_commands(self.code)


@dataclass
class Page:
    path: Path
    blocks: list[Block]
    fixtures: list[str]

    @property
    def runnable(self) -> list[Block]:
        return [b for b in self.blocks if b.kind in ("python", "shell", "console", "file")]


def parse_page(path: Path, text: str | None = None) -> Page:
    text = path.read_text() if text is None else text
    lines = text.splitlines()
    blocks: list[Block] = []
    fixtures: list[str] = []
    replacements: list[tuple[str, str]] = []
    pending: dict[str, str] = {}
    i = 0
    while i < len(lines):
        directive = _DIRECTIVE.match(lines[i])
        fence = _FENCE.match(lines[i])
        if directive:
            name, _, rest = directive.group("body").partition(" ")
            rest = rest.strip()
            where = f"{path}:{i + 1}"
            if name == "skip":
                if not rest:
                    raise DocsTestError(f"{where}: `docs-test: skip` needs a reason")
                pending["skip"] = rest
            elif name == "background":
                pending["background"] = rest
            elif name == "stop":
                pending["stop"] = "yes"
            elif name == "fixture":
                fixtures.extend(rest.split())
            elif name == "replace":
                words = shlex.split(rest)
                if len(words) != 2:
                    raise DocsTestError(f'{where}: `docs-test: replace "OLD" "NEW"` takes two quoted strings')
                replacements.append((words[0], words[1]))
            else:
                raise DocsTestError(f"{where}: unknown directive `docs-test: {name}`")
            i += 1
            continue
        if not fence:
            i += 1
            continue
        indent, marker, lang, info = fence.group("indent", "fence", "lang", "info")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (lines[j].strip().startswith(marker) and lines[j].strip().strip(marker[0]) == ""):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        title_match = _TITLE.search(info)
        title = title_match.group(1) if title_match else None
        if title == OUTPUT_TITLE:
            kind = "output"
        elif title is not None:
            kind = "file"
        else:
            kind = RUN_LANGUAGES.get(lang.lower(), "other")
        code = "\n".join(body) + "\n"
        if kind == "output":
            previous = next((b for b in reversed(blocks) if b.kind != "other"), None)
            if previous is None or previous.kind not in ("python", "shell"):
                raise DocsTestError(f"{path}:{i + 1}: an Output block must follow a python or bash block")
            previous.expected_output = [line for line in body if line.strip()]
        steered = bool(pending)
        block = Block(
            path, i + 1, kind, code, title=title, skip=pending.pop("skip", None),
            background=pending.pop("background", None), stop_before=bool(pending.pop("stop", None)),
            replacements=list(replacements),
        )
        if steered and kind not in ("python", "shell", "console", "file"):
            raise DocsTestError(f"{block.where}: a docs-test directive before a block that is not run ({lang or 'no language'})")
        blocks.append(block)
        i = j + 1
    return Page(path, blocks, fixtures)


def _join_continued(lines: list[str]) -> list[str]:
    """Lines ending in a backslash, and here-documents, joined into whole commands."""
    commands: list[str] = []
    current: list[str] = []
    heredoc: str | None = None
    for line in lines:
        current.append(line)
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
        elif (match := _HEREDOC.search(line)) is not None:
            heredoc = match.group(2)
        if heredoc is None and not line.endswith("\\"):
            commands.append("\n".join(current))
            current = []
    if current:
        commands.append("\n".join(current))
    return commands


def shell_commands(code: str) -> list[Command]:
    lines = [line for line in code.splitlines()]
    # blank lines and whole-line comments are no commands (but stay inside a here-document)
    commands = [c for c in _join_continued(lines) if c.strip() and not c.lstrip().startswith("#")]
    return [Command(c, exit_status=_exit_status(c)) for c in commands]


def console_commands(code: str) -> list[Command]:
    commands: list[Command] = []
    lines = code.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("$ "):
            if commands:
                if line.strip():
                    commands[-1].expected_output.append(line)
            elif line.strip():
                raise DocsTestError(f"console block: output before any `$ ` command: {line!r}")
            i += 1
            continue
        parts = [line[2:]]
        i += 1
        while i < len(lines) and (parts[-1].endswith("\\") or lines[i].startswith("> ")):
            parts.append(lines[i][2:] if lines[i].startswith("> ") else lines[i])
            i += 1
        text = "\n".join(parts)
        commands.append(Command(text, exit_status=_exit_status(text)))
    return commands


def _exit_status(command: str) -> int:
    match = _EXIT.search(command.splitlines()[-1])
    return int(match.group(1)) if match else 0


def output_matches(expected: list[str], actual: str) -> str | None:
    """None when every expected line matches a line of ``actual`` in order (``...`` matches anything);
    else the first expected line that did not."""
    actual_lines = [line.strip() for line in actual.splitlines()]
    position = 0
    for wanted in expected:
        pattern = re.compile(".*".join(re.escape(part) for part in wanted.strip().split("...")))
        while position < len(actual_lines) and not pattern.fullmatch(actual_lines[position]):
            position += 1
        if position == len(actual_lines):
            return wanted
        position += 1
    return None

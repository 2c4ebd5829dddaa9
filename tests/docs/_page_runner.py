"""Runs one page's blocks in order: one folder, one bash, one Python interpreter per page.

Each command goes to a bash that lives as long as the page (so ``cd``, variables and
background jobs carry over), and each Python block to an interpreter that does too. Output
is read up to a marker line, with a timeout per command; a background block's commands run
with their output in a log, and the page goes on once its URL answers.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx

from docs._blocks import Block, Command, output_matches

DRIVER = Path(__file__).with_name("_python_driver.py")
#: long enough for a cold `bundle containerize` on a busy 2-core machine
COMMAND_TIMEOUT = 1200.0
READY_TIMEOUT = 180.0
#: the site's fixed ports, in a page's text, become the page's own free ones
SUBSTITUTIONS = {
    "127.0.0.1:3000": "127.0.0.1:{port}",
    "localhost:3000": "localhost:{port}",
    "-p 3000:3000": "-p {port}:3000",
    "--port 3000": "--port {port}",
    "127.0.0.1:5000": "127.0.0.1:{registry_port}",
    "localhost:5000": "localhost:{registry_port}",
}


class DocExampleFailed(AssertionError):
    pass


class _Process:
    """A child whose merged output is read line by line up to a marker."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.marker = f"@@docs-test-{uuid.uuid4().hex}@@"
        self.process = subprocess.Popen(
            [*args, self.marker] if args[0] == sys.executable else args, cwd=cwd, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def until_marker(self, timeout: float) -> tuple[str, int]:
        """The output up to the marker line, and the status printed after it."""
        deadline = time.monotonic() + timeout
        output: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise DocExampleFailed(f"no answer after {timeout:.0f} s; output so far:\n{''.join(output)[-4000:]}") from None
            if line is None:
                raise DocExampleFailed(f"the shell or interpreter exited; output:\n{''.join(output)[-4000:]}")
            text = line.decode(errors="replace")
            if text.startswith(self.marker):
                return "".join(output).removesuffix("\n"), int(text.split()[1])
            output.append(text)

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(30)
        # whatever it left running (a server started with `&`, a registry)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._reader.join(30)  # EOF once every holder of the pipe is gone
        assert self.process.stdout is not None
        self.process.stdout.close()


class PageRunner:
    """Runs blocks of one page in ``folder`` with ``env``; ``close()`` stops what they left running."""

    def __init__(self, folder: Path, env: dict[str, str], substitutions: dict[str, str]) -> None:
        self.folder, self.env, self.substitutions = folder, env, substitutions
        self._shell: _Process | None = None
        self._python: _Process | None = None
        self._background = 0

    def substitute(self, block: Block, text: str) -> str:
        for old, new in [*block.replacements, *self.substitutions.items()]:
            text = text.replace(old, new.format(**self.env_names()))
        return text

    def env_names(self) -> dict[str, str]:
        return {"port": self.env["MODELBUNDLE_PORT"], "registry_port": self.env["REGISTRY_PORT"],
                **{k.lower(): v for k, v in self.env.items() if k.startswith("DOCS_TEST_")}}

    @property
    def shell(self) -> _Process:
        if self._shell is None:
            self._shell = _Process(["bash", "--noprofile", "--norc"], self.folder, self.env)
        return self._shell

    @property
    def python(self) -> _Process:
        if self._python is None:
            self._python = _Process([sys.executable, "-u", str(DRIVER)], self.folder, self.env)
        return self._python

    def run(self, block: Block) -> None:
        if block.stop_before:
            self.stop_background()
        code = self.substitute(block, block.code)
        if block.kind == "file":
            target = self.folder / block.title  # type: ignore[operator]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code)
        elif block.kind == "python":
            data = code.encode()
            self.python.send(f"{len(data)} {block.where}\n".encode() + data)
            started = time.monotonic()
            output, status = self.python.until_marker(COMMAND_TIMEOUT)
            print(f"{time.monotonic() - started:6.1f} s  {block.where}: python")
            if status:
                raise DocExampleFailed(f"{block.where}: the Python block raised:\n{output[-6000:]}")
            self._check_output(block, block.expected_output, output, "the Python block")
        elif block.background is not None:
            self._start_background(block)
        else:
            outputs = [self._run_command(block, command) for command in block.commands()]
            if block.kind == "shell":
                self._check_output(block, block.expected_output, "\n".join(outputs), "the block")

    def _run_command(self, block: Block, command: Command) -> str:
        text = self.substitute(block, command.text)
        started = time.monotonic()
        self.shell.send(f"{{ {text}\n}} </dev/null\nprintf '\\n%s %d\\n' {self.shell.marker} $?\n".encode())
        output, status = self.shell.until_marker(COMMAND_TIMEOUT)
        print(f"{time.monotonic() - started:6.1f} s  {block.where}: {text.splitlines()[0]}")  # where a slow page spends its time
        if status != command.exit_status:
            raise DocExampleFailed(
                f"{block.where}: `{text}` exited {status}, not {command.exit_status}:\n{output[-6000:]}"
            )
        self._check_output(block, command.expected_output, output, f"`{text}`")
        return output

    def _check_output(self, block: Block, expected: list[str], output: str, what: str) -> None:
        expected = [self.substitute(block, line) for line in expected]  # the page's ports, as in its commands
        missing = output_matches(expected, output) if expected else None
        if missing is not None:
            raise DocExampleFailed(f"{block.where}: {what} did not print {missing!r} (in order); it printed:\n{output[-6000:]}")

    def _start_background(self, block: Block) -> None:
        url = self.substitute(block, block.background or "http://127.0.0.1:3000/readyz")
        log = self.folder / f".docs-test-background-{self._background}.log"
        self._background += 1
        pids = []
        for command in block.commands():
            # `bundle serve ... &` as a reader types it: the harness backgrounds it itself
            text = self.substitute(block, command.text).rstrip().removesuffix("&")
            # set -m: the job gets its own process group, so that stopping it reaches the server
            # the group's shell started, not only that shell
            self.shell.send(f"set -m; {{ {text}\n}} </dev/null >>{log} 2>&1 &\nset +m; printf '\\n%s %d\\n' {self.shell.marker} $!\n".encode())
            pids.append(self.shell.until_marker(30)[1])
        started = time.monotonic()
        deadline = started + READY_TIMEOUT
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=5).status_code == 200:
                    print(f"{time.monotonic() - started:6.1f} s  {block.where}: up in the background")
                    return
            ended = not all(_running(pid) for pid in pids)
            if ended or time.monotonic() > deadline:
                why = "it exited" if ended else f"{url} did not answer 200 within {READY_TIMEOUT:.0f} s"
                raise DocExampleFailed(f"{block.where}: {why}:\n{log.read_text()[-6000:] if log.exists() else ''}")
            time.sleep(0.2)

    def stop_background(self) -> None:
        """SIGTERM to every background job's process group, and wait for them to end."""
        if self._shell is None:
            return
        self.shell.send(f"for p in $(jobs -p); do kill -- -$p 2>/dev/null; done; wait\nprintf '\\n%s 0\\n' {self.shell.marker}\n".encode())
        self.shell.until_marker(120)

    def close(self) -> None:
        if self._shell is not None:
            with contextlib.suppress(DocExampleFailed):
                self.stop_background()
            self._shell.close()
        if self._python is not None:
            self._python.close()


def _running(pid: int) -> bool:
    """Whether ``pid`` is alive (a zombie, not yet reaped by its shell, has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False

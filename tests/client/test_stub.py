"""``bundle client``: the module it writes from a built bundle's openapi.json type-checks under
``mypy --strict`` with a script that calls it, makes mypy refuse a wrong call, and calls the
bundle's APIs on a real server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fixtures.bundles import build_in_process
from fixtures.cli import cli, failed, ok
from fixtures.services.kinds import Kinds
from modelbundle.runtime import ServeConfig

SERVICES = Path(__file__).resolve().parents[1] / "fixtures" / "services"

GOOD = """\
from typing import Any
import numpy as np
from numpy.typing import NDArray
from PIL import Image
from kinds_client import Answer, KindsClient

def use(url: str) -> tuple[NDArray[np.float32], str, Answer, Image.Image, bytes, int]:
    with KindsClient(url) as kinds:
        scaled: NDArray[np.float32] = kinds.scale(np.zeros((1, 2), dtype=np.float32), factor=3.0)
        also = kinds.scale([[1.0, 2.0]])
        answer = kinds.search({"text": "a b c"}, scale=0.5)
        words: list[str] = answer["words"]
        flipped = kinds.flip(Image.new("RGB", (2, 2)))
        left: list[int] = list(kinds.countdown(3))
        return also, kinds.shout("hi"), answer, flipped, kinds.reverse(b"ab"), kinds.fail(len(words) + len(left))
"""

#: each line a call mypy must refuse, with what it says of it
WRONG = {
    'kinds.shout(3)': 'Argument 1 to "shout" of "KindsClient" has incompatible type "int"; expected "str"',
    'kinds.search({"text": "a", "txt": "b"})': 'Extra key "txt" for TypedDict "Query"',
    'kinds.fail(n=1, m=2)': 'Unexpected keyword argument "m" for "fail" of "KindsClient"',
    'x: str = kinds.fail(1)': 'Incompatible types in assignment (expression has type "int", variable has type "str")',
    'kinds.scale("rows")': 'Argument 1 to "scale" of "KindsClient" has incompatible type "str"',
    'y: list[str] = list(kinds.countdown(2))': 'Argument 1 to "list" has incompatible type "Iterator[int]"',
}


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home, project = tmp_path_factory.mktemp("client-home"), tmp_path_factory.mktemp("client-project")
    shutil.copy(SERVICES / "kinds.py", project / "kinds.py")
    bundle = build_in_process(f"{project / 'kinds.py'}:Kinds", project, home)
    folder = tmp_path_factory.mktemp("client-stub")
    ok(cli("client", bundle.tag, "-o", folder / "kinds_client.py", home=home))
    assert failed(cli("client", "nosuch", "-o", folder / "x.py", home=home)).startswith("error: no bundle nosuch")
    assert not (folder / "x.py").exists()
    return folder / "kinds_client.py"


def mypy(folder: Path, script: str) -> subprocess.CompletedProcess[str]:
    (folder / "script.py").write_text(script)
    command = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(folder / ".mypy"), "script.py", "kinds_client.py"]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600, check=False)


def test_the_stub_type_checks_strictly_and_wrong_calls_do_not(stub: Path) -> None:
    # one mypy run (numpy's stubs take a while): the good script, then one function per wrong call
    script = GOOD + "".join(f"\ndef wrong_{i}(kinds: KindsClient) -> None:\n    {line}\n" for i, line in enumerate(WRONG))
    checked = mypy(stub.parent, script)
    errors = [line for line in checked.stdout.splitlines() if ": error: " in line]
    lines = script.splitlines()
    # every error is on one of the wrong lines, each wrong line has its error, the stub has none
    assert [lines[int(e.split(":")[1]) - 1].strip() for e in errors] == list(WRONG), checked.stdout + checked.stderr
    for error, expected in zip(errors, WRONG.values(), strict=True):
        assert error.startswith("script.py:") and expected in error, (expected, error)


def test_the_stub_calls_the_served_bundle(stub: Path, serve_in_thread: Any) -> None:
    sys.path.insert(0, str(stub.parent))
    try:
        import kinds_client  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(stub.parent))
    with serve_in_thread(Kinds, ServeConfig(log_level="critical")) as server, kinds_client.KindsClient(server.url) as kinds:
        rows = np.array([[1.0, 2.5]], dtype=np.float32)
        assert np.array_equal(kinds.scale(rows, factor=4.0), rows * 4)
        assert np.array_equal(kinds.scale(rows), rows * 2)  # left out: the server's default
        assert kinds.search({"text": "x y z", "top_k": 1}) == {"words": ["x"], "scale": 1.0}
        assert kinds.shout("ok") == "OK"
        assert list(kinds.countdown(3)) == [3, 2, 1]

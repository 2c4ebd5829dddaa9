"""The zip writer, the slimming rules and the runtime platforms, on small trees."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from modelbundle.errors import ExportError
from modelbundle.exporters.awslambda import lambda_runtime
from modelbundle.exporters.awslambda._slim import slim
from modelbundle.exporters.awslambda._zip import ZipEntry, tree_files, write_zip


def make_tree(root: Path) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/core.py": "x = 1\n",
        "pkg/core.pyi": "x: int\n",
        "pkg/__pycache__/core.cpython-311.pyc": "junk",
        "pkg/tests/__init__.py": "",
        "pkg/tests/test_core.py": "",
        "pkg/sub/__init__.py": "",
        "pkg/sub/test/data.txt": "",
        # code outside the tests that imports from them (numpy.testing does): those modules stay
        "pkg/testing.py": "from pkg.tests._natype import NA\n",
        "pkg/tests/_natype.py": "from ._more import X\nNA = X\n",
        "pkg/tests/_more.py": "X = None\n",
        "pkg/sub/lazy.py": "def f():\n    from .test.helpers import h\n",
        "pkg/sub/test/__init__.py": "",
        "pkg/sub/test/helpers.py": "h = 1\n",
        "pkg/sub/test/test_lazy.py": "",
        "pkg/datasets/descr/iris.rst": "read at run time",
        # a web UI's script stays; its source map is for a browser's developer tools only
        "pkg/static/ui.js": "ui()\n//# sourceMappingURL=ui.js.map\n",
        "pkg/static/ui.js.map": "{}",
        "pkg/static/ui.css.map": "{}",
        "pkg/notapackage/tests/keep.txt": "its parent has no __init__.py",
        "pkg-1.0.dist-info/METADATA": "Name: pkg\n",
        "pkg-1.0.dist-info/RECORD": "pkg/core.py,,\n",
        "tests/__init__.py": "a top-level package named tests is somebody's import",
        "bin/tool": "#!/build/machine/python\n",
        "lib.so": "\x7fELF",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "lib.so").chmod(0o755)


def test_slim_removes_only_what_lambda_never_reads(tmp_path: Path) -> None:
    make_tree(tmp_path)
    freed = slim(tmp_path)
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert left == [
        "lib.so",
        "pkg-1.0.dist-info/METADATA",
        "pkg-1.0.dist-info/RECORD",
        "pkg/__init__.py",
        "pkg/core.py",
        "pkg/datasets/descr/iris.rst",
        "pkg/notapackage/tests/keep.txt",
        "pkg/static/ui.js",
        "pkg/sub/__init__.py",
        "pkg/sub/lazy.py",
        "pkg/sub/test/__init__.py",
        "pkg/sub/test/helpers.py",
        "pkg/testing.py",
        "pkg/tests/__init__.py",
        "pkg/tests/_more.py",
        "pkg/tests/_natype.py",
        "tests/__init__.py",
    ]
    assert freed == len("x: int\n") + len("junk") + len("#!/build/machine/python\n") + 2 * len("{}")


def test_the_zip_is_deterministic_with_lambda_modes(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    entries = [*tree_files(tree, "site"), ZipEntry("handler.py", b"print('hi')\n")]
    write_zip(entries, tmp_path / "a.zip")
    for path in tree.rglob("*"):  # other times and a stricter umask must not change a byte
        os.utime(path, (1_700_000_000, 1_700_000_000))
    os.umask(0o077)
    try:
        write_zip(list(reversed(entries)), tmp_path / "b.zip")
    finally:
        os.umask(0o022)
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        infos = {i.filename: i for i in archive.infolist()}
        assert archive.read("handler.py") == b"print('hi')\n"
        assert archive.read("site/pkg/core.py") == b"x = 1\n"
    assert infos["site/"].external_attr >> 16 == 0o40755 and infos["site/pkg/tests/"].is_dir()
    assert infos["site/pkg/core.py"].external_attr >> 16 == 0o100644
    assert infos["site/lib.so"].external_attr >> 16 == 0o100755
    assert {i.date_time for i in infos.values()} == {(1980, 1, 1, 0, 0, 0)}


def test_runtime_platforms() -> None:
    py311 = lambda_runtime("3.11", "x86_64")
    assert py311.identifier == "python3.11" and py311.abi == "cp311"
    # the bundler's one definition: manylinux2014, 2010 and 1 each beside the glibc it stands for (2.17, 2.12, 2.5)
    assert py311.platforms[0] == "manylinux_2_26_x86_64" and py311.platforms[-1] == "manylinux1_x86_64"
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64"} <= set(py311.platforms)
    assert "manylinux_2_27_x86_64" not in py311.platforms and "manylinux_2_17_x86_64" in py311.platforms
    assert py311.describe() == "python3.11 x86_64 (Amazon Linux 2, glibc 2.26)"
    py312 = lambda_runtime("3.12.4", "arm64")
    assert py312.python == "3.12" and py312.platforms[0] == "manylinux_2_28_aarch64"
    assert py312.platforms[-1] == "manylinux2014_aarch64" and py312.amazon_linux == "Amazon Linux 2023"


@pytest.mark.parametrize(("python", "arch", "message"), [("3.9", "x86_64", "--python '3.9'"), ("3.11", "amd64", "--arch 'amd64'"), ("3", "arm64", "--python '3'")])
def test_unknown_runtimes_are_refused(python: str, arch: str, message: str) -> None:
    with pytest.raises(ExportError, match=message):
        lambda_runtime(python, arch)

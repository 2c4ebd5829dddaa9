"""The zip's bytecode, on small trees: unchecked-hash pyc named for /var/task, reproducible, and used by Python."""

from __future__ import annotations

import importlib.util
import marshal
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelbundle.bundler import Reporter
from modelbundle.exporters.awslambda import lambda_runtime
from modelbundle.exporters.awslambda._bytecode import (
    compile_bytecode,
    compile_tree,
    pyc_name,
    skip_reason,
)

HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
OTHER_PYTHON = "3.12" if HOST_PYTHON != "3.12" else "3.11"
#: PEP 552: bit 0 set = hash-based, bit 1 clear = Python does not check the source against it
UNCHECKED_HASH = 0b01


def make_modules(root: Path) -> None:
    files = {
        "pkg/__init__.py": "from .core import VALUE\n",
        "pkg/core.py": 'VALUE = "compiled"\nNAMES = {"alpha", "beta", "gamma", "delta", "epsilon"}\n',
        "pkg/data.txt": "not a module",
        "handler.py": "import pkg\n\ndef where():\n    raise RuntimeError(pkg.VALUE)\n",
        "py2.py": 'print "a file some distributions ship for another Python"\n',
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def pyc_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.pyc"))}


def test_every_module_gets_an_unchecked_hash_pyc_compiled_as_its_var_task_path(tmp_path: Path) -> None:
    make_modules(tmp_path)
    result = compile_tree(tmp_path)
    tag = sys.implementation.cache_tag
    written = pyc_files(tmp_path)
    assert sorted(written) == [f"__pycache__/handler.{tag}.pyc", f"pkg/__pycache__/__init__.{tag}.pyc", f"pkg/__pycache__/core.{tag}.pyc"]
    assert result.compiled == 3 and result.failed == ("py2.py",)
    for name, data in written.items():
        assert data[:4] == importlib.util.MAGIC_NUMBER, name
        assert int.from_bytes(data[4:8], "little") == UNCHECKED_HASH, name
        source = (tmp_path / name.replace("__pycache__/", "").replace(f".{tag}.pyc", ".py")).read_bytes()
        assert data[8:16] == importlib.util.source_hash(source), name
    code = marshal.loads(written[f"pkg/__pycache__/core.{tag}.pyc"][16:])
    assert code.co_filename == "/var/task/pkg/core.py"  # not the export's temporary folder
    assert pyc_name("a/b.c.py", "cpython-311") == "a/__pycache__/b.c.cpython-311.pyc"


def test_the_bytecode_depends_only_on_the_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "elsewhere" / "second"
    make_modules(first)
    compile_tree(first)
    make_modules(second)
    for path in second.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    # the exporting shell's settings change neither the bytes nor where they go
    monkeypatch.setenv("PYTHONHASHSEED", "12345")
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path / "prefix"))
    monkeypatch.setenv("PYTHONOPTIMIZE", "2")
    compile_tree(second)
    assert pyc_files(first) == pyc_files(second) and len(pyc_files(first)) == 3
    assert not (tmp_path / "prefix").exists()


def test_python_runs_the_bytecode_without_reading_the_source_again(tmp_path: Path) -> None:
    """Unchecked-hash pyc are not checked against their source: a changed source is not even noticed.

    That is what makes them work from a read-only /var/task, and it shows which file Python ran:
    if it compiled the source instead, the changed value would come out.
    """
    make_modules(tmp_path)
    compile_tree(tmp_path)
    (tmp_path / "pkg" / "core.py").write_text('VALUE = "the source"\n')
    probe = (
        "import sys, traceback; sys.path.insert(0, sys.argv[1]); import handler, pkg.core\n"
        "print(pkg.core.VALUE, pkg.core.__cached__ == pkg.core.__spec__.cached, sys.dont_write_bytecode)\n"
        "try:\n    handler.where()\nexcept RuntimeError:\n    print(traceback.format_exc().splitlines()[-2].strip())\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=60, check=True
    )
    # the source of a traceback line is read from the file Python ran (tracebacks stay useful)
    assert result.stdout.splitlines() == ["compiled True True", "raise RuntimeError(pkg.VALUE)"]


def test_the_bytecode_is_for_this_python_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_modules(tmp_path)
    assert skip_reason(lambda_runtime(HOST_PYTHON, "x86_64")) is None
    written = compile_bytecode(lambda_runtime(OTHER_PYTHON, "arm64"), [tmp_path], Reporter(quiet=True))
    assert written == 0 and pyc_files(tmp_path) == {}
    [warning] = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith("warning: the zip has no bytecode: it is for ")
    assert f"python{OTHER_PYTHON}" in warning and f"cpython {HOST_PYTHON}" in warning and f"Python {OTHER_PYTHON}" in warning


def test_the_runtimes_python_compiles_every_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site, entry = tmp_path / "site", tmp_path / "entry"
    make_modules(site)
    entry.mkdir()
    (entry / "modelbundle_handler.py").write_text("HANDLER = 1\n")
    assert compile_bytecode(lambda_runtime(HOST_PYTHON, "x86_64"), [site, entry], Reporter(quiet=False)) == 4
    assert (entry / pyc_name("modelbundle_handler.py")).is_file()
    err = capsys.readouterr().err
    assert f"4 modules compiled to bytecode, 1 left as source only (not Python {HOST_PYTHON} code)" in err and "warning" not in err

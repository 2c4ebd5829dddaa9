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
    Bytecode,
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
    result = Bytecode()
    compile_tree(tmp_path, result)
    tag = sys.implementation.cache_tag
    written = pyc_files(tmp_path)
    assert sorted(written) == [f"__pycache__/handler.{tag}.pyc", f"pkg/__pycache__/__init__.{tag}.pyc", f"pkg/__pycache__/core.{tag}.pyc"]
    assert sorted(result.pycs) == ["handler.py", "pkg/__init__.py", "pkg/core.py"] and result.failed == ["py2.py"]
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
    compile_tree(first, Bytecode())
    make_modules(second)
    for path in second.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    # the exporting shell's settings change neither the bytes nor where they go
    monkeypatch.setenv("PYTHONHASHSEED", "12345")
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path / "prefix"))
    monkeypatch.setenv("PYTHONOPTIMIZE", "2")
    compile_tree(second, Bytecode())
    assert pyc_files(first) == pyc_files(second) and len(pyc_files(first)) == 3
    assert not (tmp_path / "prefix").exists()


def test_python_runs_the_bytecode_without_reading_the_source_again(tmp_path: Path) -> None:
    """Unchecked-hash pyc are not checked against their source: a changed source is not even noticed.

    That is what makes them work from a read-only /var/task, and it shows which file Python ran:
    if it compiled the source instead, the changed value would come out.
    """
    make_modules(tmp_path)
    compile_tree(tmp_path, Bytecode())
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
    assert written is None and pyc_files(tmp_path) == {}
    [warning] = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith("warning: the zip has no bytecode: it is for ")
    assert f"python{OTHER_PYTHON}" in warning and f"cpython {HOST_PYTHON}" in warning and f"Python {OTHER_PYTHON}" in warning


def test_the_runtimes_python_compiles_every_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site, entry = tmp_path / "site", tmp_path / "entry"
    make_modules(site)
    entry.mkdir()
    (entry / "modelbundle_handler.py").write_text("HANDLER = 1\n")
    bytecode = compile_bytecode(lambda_runtime(HOST_PYTHON, "x86_64"), [site, entry], Reporter(quiet=False))
    assert bytecode is not None and len(bytecode.pycs) == 4
    assert (entry / pyc_name("modelbundle_handler.py")).is_file()
    err = capsys.readouterr().err
    assert f"4 modules compiled to bytecode, 1 left as source only (not Python {HOST_PYTHON} code)" in err and "warning" not in err


def test_when_not_all_fits_the_modules_a_cold_start_imports_keep_their_bytecode(tmp_path: Path) -> None:
    site, src = tmp_path / "site", tmp_path / "src"
    files = {
        site / "modelbundle_handler.py": "import app.server\n",
        site / "app/__init__.py": "",
        site / "app/server.py": "from . import codec\nfrom .helpers import tool\n\ndef later():\n    from app import extra\n",
        site / "app/codec.py": "if False:\n    import numpy\n",  # compiled code keeps the import, so it counts
        site / "app/helpers/__init__.py": "",
        site / "app/helpers/tool.py": "X = 1\n",
        site / "app/extra.py": "X = 2\n",
        site / "numpy/__init__.py": "",
        site / "zzz_unused.py": "X = 3\n",
        site / "aaa_unused.py": "Y = " + "1 + " * 400 + "1\n",
        src / "service.py": "import framework.core\n",  # the bundle's module: read, not compiled
        site / "framework/__init__.py": "",
        site / "framework/core.py": "import numpy\n",
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    bytecode = compile_bytecode(lambda_runtime(HOST_PYTHON, "x86_64"), [site], Reporter(quiet=True), analyse=[src])
    assert bytecode is not None and len(bytecode.pycs) == 12 and not (src / "__pycache__").exists()
    sizes = {name: path.stat().st_size for name, path in bytecode.pycs.items()}
    wanted = [
        "modelbundle_handler.py", "service.py", "app/__init__.py", "app/server.py", "framework/__init__.py",
        "framework/core.py", "app/codec.py", "app/helpers/__init__.py", "app/helpers/tool.py", "numpy/__init__.py",
    ]
    at_init = [name for name in wanted if name in sizes]  # the service's module has no pyc
    budget = sum(sizes[name] for name in at_init) + sizes["app/extra.py"]
    dropped = bytecode.keep_within(budget, ["modelbundle_handler", "service"])
    # imported at init, then what functions import, then (no room left) the rest
    assert sorted(bytecode.pycs) == sorted([*at_init, "app/extra.py"]) and dropped == 2
    assert not (site / pyc_name("aaa_unused.py")).exists() and (site / pyc_name("app/extra.py")).exists()

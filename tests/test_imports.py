"""Imports stay light and acyclic: each checked in a fresh interpreter (pip-tools' test_circular_imports)."""

import importlib.util
import os
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

import modelbundle

HEAVY = ("numpy", "fastapi", "uvicorn", "starlette", "pydantic", "docker", "pandas", "PIL", "torch", "sklearn", "boto3")
#: the standard library's own heavy part: `import modelbundle` is a budget of 50 ms, and asyncio alone takes 40
HEAVY_ON_IMPORT = (*HEAVY, "asyncio", "concurrent.futures")

# optional libraries a module may need at import; the module is skipped if one is missing
OPTIONAL = {
    "modelbundle.adapters._dataframe": "pandas",
    "modelbundle.adapters._image": "PIL",
}


def _modules() -> Iterator[str]:
    yield modelbundle.__name__
    for info in pkgutil.walk_packages(modelbundle.__path__, prefix=f"{modelbundle.__name__}."):
        if info.name != "modelbundle.__main__":  # runs the CLI; checked in test_cli.py
            yield info.name


MODULES = sorted(_modules())


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)


def test_import_modelbundle_loads_no_heavy_library() -> None:
    result = run_python(
        "import sys, modelbundle\n"
        "from modelbundle import Service, api, DType, Shape, DefinitionError, InvalidInput\n"
        f"print(sorted(m for m in {HEAVY_ON_IMPORT!r} if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_declaring_a_service_with_builtin_types_loads_no_heavy_library() -> None:
    # str/bytes hints need no framework; pydantic is only needed for JSON types
    result = run_python(
        "import sys\n"
        "from modelbundle import Service, api\n"
        "class Echo(Service):\n"
        "    @api\n"
        "    def echo(self, text: str) -> bytes:\n"
        "        return text.encode()\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


#: the build side: `bundle serve` never needs it (and a bundle's runtime env does not have it)
BUILD_SIDE = ("rich", "pathspec", "httpx", "yaml", "piptools", "fastapi")
BUILD_MODULES = ("modelbundle.bundler._build", "modelbundle.bundler._assemble", "modelbundle.bundler._lock", "modelbundle.bundler._archive", "modelbundle.bundler._env")


def test_serving_a_bundle_loads_nothing_of_the_build_side() -> None:
    # what `bundle serve NAME` imports before it imports the service (cli, runtime, the bundle loader)
    result = run_python(
        "import sys\n"
        "import modelbundle.cli, modelbundle.runtime\n"
        "from modelbundle.runtime._source import resolve_source\n"
        "from modelbundle.bundler import LocalStore, open_bundle, verify_record\n"
        f"print(sorted(m for m in {BUILD_SIDE + BUILD_MODULES!r} if m in sys.modules))\n"
        "print('modelbundle.runtime._app' in sys.modules)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "True"]  # the runtime itself did load


def test_module_list_is_complete() -> None:
    # guards the parametrisation below against silently finding nothing
    assert {"modelbundle.errors", "modelbundle.runtime._app", "modelbundle.service_base._inspect"} <= set(MODULES)


def import_alone(module: str) -> subprocess.CompletedProcess[str]:
    return run_python(f"import {module}")


@pytest.fixture(scope="module")
def fresh_imports() -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    """Run every fresh-interpreter import up front, one per CPU at a time; each test waits for its own.

    Without vfork: these threads start interpreters while the main thread goes on with other
    tests, and under load a vforked child has twice failed its exec with EFAULT ("Bad address").
    """
    use_vfork = getattr(subprocess, "_USE_VFORK", None)  # CPython's documented escape hatch (3.11+)
    subprocess._USE_VFORK = False  # type: ignore[attr-defined]
    try:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            futures = {name: pool.submit(import_alone, name) for name in MODULES}
            yield futures
            for future in futures.values():
                future.cancel()
    finally:
        if use_vfork is not None:
            subprocess._USE_VFORK = use_vfork  # type: ignore[attr-defined]


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone(module: str, fresh_imports: dict[str, Future[subprocess.CompletedProcess[str]]]) -> None:
    optional = OPTIONAL.get(module)
    if optional is not None and importlib.util.find_spec(optional) is None:
        pytest.skip(f"{module} needs {optional}, which is not installed")
    result = fresh_imports[module].result(timeout=120)
    assert result.returncode == 0, result.stderr

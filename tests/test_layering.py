"""The engine is pure: stdlib and engine imports only, and it ships compiled."""

import ast
import importlib
import re
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"
FORBIDDEN = {
    "redis",
    "asyncpg",
    "starlette",
    "asyncio",
    "logging",
    "voucherd",
    "server",
    "worker",
    "socket",
    "subprocess",
    "threading",
}
CYTHON_OK = {"cpython", "libc", "libcpp", "cython"}
# orjson writes calculated orders as JSON fragments: a pure serializer, no I/O.
PURE_LIBRARIES = {"orjson"}
_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+c?import|c?import\s+([\w.]+))", re.M)


def _imports(path: Path) -> set[str]:
    text = path.read_text()
    if path.suffix in (".py", ".pyi"):
        names = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        return names
    return {a or b for a, b in _IMPORT.findall(text)}


def test_engine_imports_only_stdlib_and_engine() -> None:
    files = [p for p in ENGINE.iterdir() if p.suffix in (".py", ".pyx", ".pxd", ".pyi")]
    assert len(files) > 10
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in FORBIDDEN, f"{path.name} imports {name}"
            assert top == "engine" or top in CYTHON_OK | PURE_LIBRARIES or top in sys.stdlib_module_names, (
                f"{path.name} imports non-stdlib {name}"
            )


def test_engine_never_reads_environment_or_clock() -> None:
    for path in ENGINE.glob("*.pyx"):
        text = path.read_text()
        assert "os.environ" not in text and "getenv" not in text, path.name
        assert "datetime.now" not in text and "utcnow" not in text and "time.time" not in text, path.name


def test_modules_are_compiled_extensions() -> None:
    for pyx in ENGINE.glob("*.pyx"):
        mod = importlib.import_module(f"engine.{pyx.stem}")
        assert mod.__file__ is not None and mod.__file__.endswith(".so"), mod.__file__
        assert (ENGINE / f"{pyx.stem}.pyi").exists(), f"{pyx.stem}.pyi missing"

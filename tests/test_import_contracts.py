"""The import contracts in pyproject.toml (import-linter) hold, and they would catch a back-import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_contracts_hold() -> None:
    result = _lint(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("importer", "back_import", "contract"),
    [
        # the catalog reaching up into loyalty: the old customers -> segments -> loyalty_earning circle
        ("voucherd/catalog/segments.py", "from voucherd.loyalty import earning", "Contexts import downwards only"),
        # the platform reaching into a context
        ("voucherd/platform/keys.py", "from voucherd.checkout import counters", "Contexts import downwards only"),
        # vouchers importing campaigns again: the old campaigns <-> vouchers circle
        ("voucherd/definitions/vouchers.py", "from voucherd.definitions import campaigns", "No import cycles"),
        # the shared package importing a process
        ("voucherd/catalog/orders.py", "import server.context", "Processes over the shared package"),
    ],
)
def test_contracts_catch_a_back_import(tmp_path: Path, importer: str, back_import: str, contract: str) -> None:
    skip = shutil.ignore_patterns("*.so", "*.c", "*.html", "__pycache__", "build")
    for package in ("voucherd", "server", "worker", "engine"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=skip)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / importer
    target.write_text(target.read_text() + f"\n{back_import}  # noqa\n")
    result = _lint(tmp_path, tmp_path)
    assert result.returncode != 0, result.stdout
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(line.startswith(contract) for line in broken), result.stdout

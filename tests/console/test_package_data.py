"""A wheel carries every template and static file of the console: pyproject's package-data globs cover them."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "server" / "console"


def test_every_template_and_static_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["server.console"]
    shipped = {path for pattern in globs for path in CONSOLE.glob(pattern) if path.is_file()}
    files = {
        path
        for folder in ("templates", "static")
        for path in (CONSOLE / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert files, "no console files found"
    assert sorted(files - shipped) == [], "add a glob to [tool.setuptools.package-data] server.console"

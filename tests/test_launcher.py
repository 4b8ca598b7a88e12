"""``voucherd run`` end to end: starts its own Redis and PostgreSQL, serves, stops, and reuses its data."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.services import scratch_dir
from voucherd.platform.localstack import free_port, port_is_free

pytestmark = pytest.mark.slow


def call(method: str, url: str, headers: dict[str, str] | None = None, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json",
                                                                                 **(headers or {})})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@contextmanager
def voucherd_run(data_dir: Path, port: int, **extra_env: str) -> Iterator[subprocess.Popen[bytes]]:
    with launched(data_dir, port, extra_env) as proc:
        yield proc


@contextmanager
def launched(
    data_dir: Path, port: int, extra_env: Mapping[str, str], output: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``voucherd run`` (as ``make run`` starts it), once healthy. Its output is piped, or appended to
    ``output``: a long run must not fill a pipe that nobody reads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOUCHERD_", "REDIS_URL", "DATABASE_URL"))}
    env.update({"VOUCHERD_DATA_DIR": str(data_dir), "VOUCHERD_PORT": str(port), "VOUCHERD_SERVER_PROCESSES": "1",
                **extra_env})  # fmt: skip
    with open(output, "ab") if output is not None else contextlib.nullcontext(subprocess.PIPE) as out:
        proc = subprocess.Popen([sys.executable, "-m", "voucherd.cli", "run"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip

    def said() -> str:
        if output is not None:
            return output.read_text(errors="replace")[-5000:]
        return proc.stdout.read().decode() if proc.stdout else ""

    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, said()
            try:
                if call("GET", f"http://127.0.0.1:{port}/health")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, "voucherd run did not become healthy"
            time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_run_serves_stops_and_reuses_its_data_folder() -> None:
    with scratch_dir("voucherd-run-") as folder:
        data_dir, port = folder / "data", free_port()
        with voucherd_run(data_dir, port) as proc:
            keys = json.loads((data_dir / "credentials.json").read_text())
            headers = {"X-App-Id": keys["app_id"], "X-App-Token": keys["app_token"]}
            status, category = call("POST", f"http://127.0.0.1:{port}/v1/categories", headers,
                                    {"name": "Kept", "hierarchy": 1})  # fmt: skip
            assert status == 200
            status, error = call("GET", f"http://127.0.0.1:{port}/v1/categories",
                                 {**headers, "X-App-Token": "wrong"})  # fmt: skip
            assert status == 401 and error["key"] == "unauthorized" and error["request_id"].startswith("v-")
            ports = json.loads((data_dir / "ports.json").read_text())
            assert set(ports) == {"redis", "postgres"} and not {6379, 5432} & set(ports.values())
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
            output = proc.stdout.read().decode() if proc.stdout else ""
            assert keys["app_token"] in output and f"http://127.0.0.1:{port}" in output
        # Everything it started has stopped.
        assert port_is_free(port) and port_is_free(ports["redis"]) and port_is_free(ports["postgres"])

        with voucherd_run(data_dir, port):
            assert json.loads((data_dir / "credentials.json").read_text())["app_token"] == keys["app_token"]
            status, listing = call("GET", f"http://127.0.0.1:{port}/v1/categories", headers)
            assert status == 200 and [c["id"] for c in listing["data"]] == [category["id"]]


def test_run_installs_fixed_keys_when_given() -> None:
    with scratch_dir("voucherd-run-") as folder:
        port = free_port()
        fixed = {"VOUCHERD_APP_ID": "shop-app-id", "VOUCHERD_APP_TOKEN": "shop-app-token"}
        with voucherd_run(folder / "data", port, **fixed):
            headers = {"X-App-Id": "shop-app-id", "X-App-Token": "shop-app-token"}
            assert call("GET", f"http://127.0.0.1:{port}/v1/categories", headers)[0] == 200

"""``voucherd purge-metadata-key RESOURCE KEY --project ID [--wait]``: the management purge from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, drain_worker
from voucherd import cli
from voucherd.platform.settings import Settings


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    return settings


def customers_with_metadata(client: TestClient, project: ProjectKeys) -> None:
    for source_id in ("a", "b"):
        response = client.post(
            "/v1/customers", headers=project.headers, json={"source_id": source_id, "metadata": {"old": 1, "keep": 2}}
        )
        assert response.status_code == 200, response.text


def test_purge_prints_the_action_id_and_the_worker_runs_it(
    client: TestClient, project: ProjectKeys, env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    customers_with_metadata(client, project)
    assert cli.main(["purge-metadata-key", "customers", "old", "--project", project.project_id]) == 0
    action_id = capsys.readouterr().out.strip()
    assert action_id.startswith("aa_")
    drain_worker(env)
    action = client.get(f"/v1/async-actions/{action_id}", headers=project.headers).json()
    assert action["type"] == "CUSTOMERS.METADATA_KEY_PURGE" and action["status"] == "DONE"
    assert action["result"]["done_count"] == 2
    for source_id in ("a", "b"):
        assert client.get(f"/v1/customers/{source_id}", headers=project.headers).json()["metadata"] == {"keep": 2}


def test_purge_wait_polls_until_done(
    client: TestClient, project: ProjectKeys, env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    customers_with_metadata(client, project)
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "worker"], env={**os.environ, **env.to_env()}, stdout=log, stderr=log
        )
    try:
        code = cli.main(["purge-metadata-key", "customers", "old", "--project", project.project_id, "--wait"])
    finally:
        worker.terminate()
        worker.wait(20)
    assert code == 0
    out = capsys.readouterr().out
    action_id, _newline, printed = out.partition("\n")
    action = orjson.loads(printed)
    assert action["id"] == action_id and action["status"] == "DONE" and action["progress"] == 100
    assert action["result"]["done_count"] == 2
    assert client.get("/v1/customers/a", headers=project.headers).json()["metadata"] == {"keep": 2}


def test_purge_refuses_unknown_projects_and_resources(
    project: ProjectKeys, env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["purge-metadata-key", "customers", "old", "--project", "proj_nope"]) == 2
    assert "proj_nope" in capsys.readouterr().err
    assert cli.main(["purge-metadata-key", "planets", "old", "--project", project.project_id]) == 2
    assert "planets" in capsys.readouterr().err


def test_purge_from_a_fresh_process(project: ProjectKeys, env: Settings) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "voucherd.cli", "purge-metadata-key", "vouchers", "k", "--project", project.project_id],
        env={**os.environ, **env.to_env()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("aa_")

"""Settings come from the environment once, with casts and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from voucherd.platform.settings import Settings, SettingsError


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.port == 8000 and s.redis_url == "" and s.database_url == ""
    assert s.data_dir == Path(".voucherd") and s.redis_appendfsync == "everysec"
    assert s.server_processes >= 1 and s.worker_processes == 1


def test_values_are_read_and_cast() -> None:
    s = Settings.from_env(
        {
            "REDIS_URL": "redis://h:1/0",
            "DATABASE_URL": "postgresql://x@h/db",
            "VOUCHERD_PORT": "9001",
            "VOUCHERD_DATA_DIR": "/srv/vd",
            "VOUCHERD_APP_ID": "id",
            "VOUCHERD_APP_TOKEN": "tok",
            "VOUCHERD_REDIS_APPENDFSYNC": "always",
        }
    )
    assert (s.redis_url, s.database_url, s.port, s.data_dir) == (
        "redis://h:1/0",
        "postgresql://x@h/db",
        9001,
        Path("/srv/vd"),
    )
    assert (s.app_id, s.app_token, s.redis_appendfsync) == ("id", "tok", "always")


def test_round_trip_through_the_environment() -> None:
    s = Settings.from_env({"VOUCHERD_PORT": "8123", "REDIS_URL": "redis://a", "VOUCHERD_SERVER_PROCESSES": "3"})
    assert Settings.from_env(s.to_env()) == s


@pytest.mark.parametrize(
    ("name", "value"),
    [("VOUCHERD_PORT", "eighty"), ("VOUCHERD_PORT", "0"), ("VOUCHERD_REDIS_APPENDFSYNC", "sometimes"),
     ("VOUCHERD_LOG_FORMAT", "xml")],
)  # fmt: skip
def test_bad_values_are_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_settings_are_frozen() -> None:
    s = Settings.from_env({})
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]

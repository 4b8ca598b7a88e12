"""Redis and PostgreSQL servers that voucherd starts for itself.

``voucherd run`` uses these when ``REDIS_URL`` / ``DATABASE_URL`` are unset, keeping
the data in a local folder and reusing it on the next start; the test session uses
them with throw-away folders. They listen on loopback ports of their own (never the
standard ones) and never touch servers that are already running.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres``
system user, which must own its data folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)

# sockaddr_un holds 108 bytes with the terminating NUL; longer socket paths cannot be bound.
MAX_SOCKET_PATH = 100


def _fits(path: Path) -> bool:
    return len(os.fsencode(path)) <= MAX_SOCKET_PATH


PG_USER = "voucherd"
PG_DATABASE = "voucherd"


class LocalStackError(RuntimeError):
    """A local server could not be found, set up or started."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether a server could listen on the port now (TIME_WAIT leftovers do not count, as for servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_pid(pid: int, sig: int, timeout: float = 15.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def find_redis_server() -> str:
    path = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if path is None:
        raise LocalStackError(
            "redis-server is not installed. Install the Debian package 'redis-server' "
            "(sudo apt-get install redis-server) or set REDIS_URL to an existing server."
        )
    return path


def find_postgres_bindir() -> Path:
    candidates = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "postgres").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1]
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    raise LocalStackError(
        "The PostgreSQL server is not installed. Install the Debian package 'postgresql' "
        "(sudo apt-get install postgresql) or set DATABASE_URL to an existing server."
    )


def _has_lz4(bindir: Path) -> bool:
    """Whether this PostgreSQL build can compress with lz4 (14 and later, built --with-lz4)."""
    try:
        configure = subprocess.run(
            [str(bindir / "pg_config"), "--configure"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--with-lz4" in configure


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, logfile: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalStackError(f"{what} exited with code {proc.returncode}; see {logfile}:\n{_tail(logfile)}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise LocalStackError(f"{what} did not listen on port {port} within {timeout:.0f}s; see {logfile}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class RedisServer:
    """A redis-server child process on a loopback port with its files in ``directory``."""

    directory: Path
    port: int
    appendonly: bool = True
    appendfsync: str = "everysec"
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket_path(self) -> Path | None:
        path = (self.directory / "redis.sock").resolve()
        return path if _fits(path) else None

    @property
    def local_url(self) -> str:
        """For clients on this machine: the Unix socket where it fits, else the port."""
        path = self.socket_path
        return f"unix://{path}?db=0" if path else self.url

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    def start(self, timeout: float = 20.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stale = _read_pid(self.pidfile)
        if stale and _pid_alive(stale):
            log.warning("stopping a redis-server left running from an earlier start (pid %s)", stale)
            _stop_pid(stale, signal.SIGTERM)
        logfile = self.directory / "redis.log"
        args = [
            find_redis_server(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory.resolve()),
            "--pidfile", str(self.pidfile.resolve()),
            "--logfile", str(logfile.resolve()),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--protected-mode", "yes",
            *(("--unixsocket", str(self.socket_path), "--unixsocketperm", "700") if self.socket_path else ()),
            *self.extra_args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        _wait_for_port(self.port, self.proc, "redis-server", logfile, timeout)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class PostgresServer:
    """A postgres child process (initdb'd on first use) on a loopback port.

    ``durable=False`` turns off fsync and friends: for throw-away test clusters only.
    """

    directory: Path
    port: int
    durable: bool = True
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{PG_DATABASE}"

    @property
    def local_url(self) -> str:
        """For clients on this machine: the Unix socket in the data folder where it fits, else the port."""
        folder = self.directory.resolve()
        if not _fits(folder / f".s.PGSQL.{self.port}"):
            return self.url
        return f"postgresql://{PG_USER}@/{PG_DATABASE}?host={quote(str(folder))}&port={self.port}"

    def _as_owner(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        return [runuser, "-u", "postgres", "--"]

    def _prepare_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
            check = subprocess.run([*self._as_owner(), "test", "-w", str(self.directory.resolve())], check=False)
            if check.returncode != 0:
                raise LocalStackError(
                    f"PostgreSQL runs as the 'postgres' user, which cannot reach {self.directory.resolve()}; "
                    "put VOUCHERD_DATA_DIR in a folder every user can traverse (chmod o+x on its parents)."
                )
        os.chmod(self.directory, 0o700)

    def _initdb(self, bindir: Path) -> None:
        if (self.directory / "PG_VERSION").exists():
            return
        result = subprocess.run(
            [*self._as_owner(), str(bindir / "initdb"), "-D", str(self.directory.resolve()),
             "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-instructions"],
            capture_output=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise LocalStackError(f"initdb failed: {result.stderr.decode(errors='replace')}")

    def start(self, timeout: float = 60.0) -> None:
        bindir = find_postgres_bindir()
        self._prepare_directory()
        self._initdb(bindir)
        stale = _read_pid(self.directory / "postmaster.pid")
        if stale and _pid_alive(stale):
            log.warning("stopping a postgres left running from an earlier start (pid %s)", stale)
            _stop_pid(stale, signal.SIGINT, timeout=30)
        logfile = self.directory.parent / f"{self.directory.name}.log"
        options = [
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={self.directory.resolve()}",
            "-c", "max_connections=200",
            # Bulk writes (a million generated codes, CSV imports) fit in memory and in the WAL between
            # checkpoints: with the defaults (128MB, 1GB) backends evicted dirty pages themselves and a
            # checkpoint in the middle made every page touched after it a full-page image in the WAL.
            "-c", "shared_buffers=512MB",
            "-c", "max_wal_size=4GB",
            "-c", "checkpoint_timeout=15min",
        ]  # fmt: skip
        if _has_lz4(bindir):
            # A redemption's stored body (2-5 KB of JSON) is compressed when its row is written: pglz
            # showed as 7% of PostgreSQL's CPU under a redemption load; lz4 does the same job several
            # times faster (values already stored stay readable, they keep their own method).
            options += ["-c", "default_toast_compression=lz4"]
        if not self.durable:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        elif self._major_version() >= 14:
            # After a crash PostgreSQL first makes the whole data folder durable. One syncfs() instead of
            # an fsync() per file brings a killed server back in well under a second instead of seconds.
            options += ["-c", "recovery_init_sync_method=syncfs"]
        with open(logfile, "ab") as out:
            self.proc = subprocess.Popen(
                [*self._as_owner(), str(bindir / "postgres"), "-D", str(self.directory.resolve()),
                 "-p", str(self.port), *options],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        _wait_for_port(self.port, self.proc, "postgres", logfile, timeout)
        self._ensure_database(bindir, timeout)

    def _major_version(self) -> int:
        try:
            return int((self.directory / "PG_VERSION").read_text().strip())
        except (OSError, ValueError):
            return 0

    def _ensure_database(self, bindir: Path, timeout: float) -> None:
        # The port answers a little before the server accepts queries; retry while it starts up.
        deadline = time.monotonic() + timeout
        while True:
            result = subprocess.run(
                [str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, "-d", "postgres",
                 "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"],
                capture_output=True, check=False,
            )  # fmt: skip
            if result.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise LocalStackError(f"postgres did not accept queries: {result.stderr.decode(errors='replace')}")
            time.sleep(0.1)
        if result.stdout.strip() != b"1":
            subprocess.run(
                [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, PG_DATABASE],
                check=True, capture_output=True,
            )  # fmt: skip

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to leave. As root our
        # child is runuser, which does not pass signals on, so signal the postmaster itself.
        postmaster = _read_pid(self.directory / "postmaster.pid")
        if postmaster and _pid_alive(postmaster):
            os.kill(postmaster, signal.SIGINT)
        else:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class PortBook:
    """Remembers the ports a data folder's servers used, so a restart reuses them when free."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.ports: dict[str, int] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.ports = {}

    def port_for(self, name: str, owner_pidfile: Path | None = None) -> int:
        port = self.ports.get(name)
        owner_alive = owner_pidfile is not None and (pid := _read_pid(owner_pidfile)) and _pid_alive(pid)
        if not port or not (port_is_free(port) or owner_alive):
            port = free_port()
            self.ports[name] = port
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.ports))
        return port

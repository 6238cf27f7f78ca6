"""A PostgreSQL primary and a streaming hot standby of the test run's own.

The ``replica`` test profile calls ``start()`` from the settings: both
clusters are created with ``initdb`` / ``pg_basebackup -R -X stream`` in a
temporary directory, as the ``postgres`` OS user when run as root, listen on
free loopback ports (55432 / 55433 when free) and are stopped, and the
directory removed, when the process exits, however it exits.  The server
binaries come from ``CROSSDB_PG_BINDIR``, else ``pg_config --bindir``, else
``/usr/lib/postgresql/*/bin``.

Tests make lag with ``paused_replay()``: ``pg_wal_replay_pause()`` on the
standby freezes it while the primary goes on committing.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PREFERRED_PORTS = (55432, 55433)
# Fast and disposable: nothing here must survive a crash.  The standby never
# cancels its own queries for replay (max_standby_streaming_delay = -1).
SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off "
    "-c wal_level=replica -c max_wal_senders=4 "
    "-c hot_standby=on -c max_standby_streaming_delay=-1 -c max_connections=40 "
    "-c max_prepared_transactions=16"
)


def bindir() -> Path | None:
    """Return the directory of the PostgreSQL server binaries, or None."""
    candidates = []
    if os.environ.get("CROSSDB_PG_BINDIR"):
        candidates.append(os.environ["CROSSDB_PG_BINDIR"])
    try:
        candidates.append(
            subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        pass
    candidates.extend(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True))
    for candidate in candidates:
        path = Path(candidate)
        if all((path / name).is_file() for name in ("initdb", "pg_ctl", "pg_basebackup")):
            return path
    return None


def available() -> bool:
    """Return True when the server binaries are installed."""
    return bindir() is not None


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports() -> tuple[int, int]:
    if all(_port_is_free(port) for port in PREFERRED_PORTS):
        return PREFERRED_PORTS
    ports = []
    while len(ports) < 2:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in ports:
            ports.append(port)
    return ports[0], ports[1]


@dataclass
class Clusters:
    """Where the primary and the standby run."""

    root: Path
    primary_port: int
    standby_port: int
    bindir: Path
    started: list

    @property
    def host(self) -> str:
        return "127.0.0.1"


_clusters: Clusters | None = None


def _as_postgres(*command, **kwargs):
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(
        [*prefix, *map(str, command)], check=True, capture_output=True, text=True, **kwargs
    )


def _pg_ctl(clusters: Clusters, data: Path, *args):
    return _as_postgres(clusters.bindir / "pg_ctl", "-D", data, *args)


def _start_server(clusters: Clusters, name: str, port: int):
    data = clusters.root / name
    options = f"-p {port} -k {clusters.root} {SERVER_OPTIONS}"
    _pg_ctl(clusters, data, "-l", clusters.root / f"{name}.log", "-o", options, "-w", "start")
    clusters.started.append(data)


def start() -> Clusters:
    """Start the primary and its streaming standby once per process; return where."""
    global _clusters
    if _clusters is not None:
        return _clusters
    binaries = bindir()
    if binaries is None:
        raise RuntimeError(
            "the 'replica' profile needs the PostgreSQL server binaries (initdb, pg_ctl, "
            "pg_basebackup): install postgresql or set CROSSDB_PG_BINDIR"
        )
    root = Path(tempfile.mkdtemp(prefix="crossdb-standby-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    primary_port, standby_port = _free_ports()
    clusters = Clusters(root, primary_port, standby_port, binaries, [])
    atexit.register(stop, clusters)
    _stop_on_sigterm()
    try:
        _as_postgres(
            binaries / "initdb",
            "-D",
            root / "primary",
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        _start_server(clusters, "primary", primary_port)
        _as_postgres(
            binaries / "pg_basebackup",
            "-h",
            clusters.host,
            "-p",
            primary_port,
            "-U",
            "postgres",
            "-D",
            root / "standby",
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        )
        _start_server(clusters, "standby", standby_port)
        _wait_until_streaming(clusters)
    except BaseException as error:
        details = getattr(error, "stderr", "") or ""
        # The servers' own logs say why; they go with the directory.
        for log in sorted(root.glob("*.log")):
            details += f"\n{log.name}:\n{log.read_text()[-2000:]}"
        stop(clusters)
        raise RuntimeError(
            f"could not start the PostgreSQL primary and standby: {details}"
        ) from error
    _clusters = clusters
    return clusters


def _psql(clusters: Clusters, port: int, sql: str) -> str:
    return _as_postgres(
        clusters.bindir / "psql",
        "-h",
        clusters.host,
        "-p",
        port,
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-Atc",
        sql,
    ).stdout.strip()


def _wait_until_streaming(clusters: Clusters, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        state = _psql(clusters, clusters.primary_port, "SELECT state FROM pg_stat_replication")
        if state == "streaming":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the standby is not streaming (state {state!r})")
        time.sleep(0.1)


def stop(clusters: Clusters):
    """Stop both servers (the standby first) and remove their directory."""
    while clusters.started:
        data = clusters.started.pop()
        try:
            _pg_ctl(clusters, data, "-m", "immediate", "-w", "stop")
        except (OSError, subprocess.CalledProcessError):
            pass
    shutil.rmtree(clusters.root, ignore_errors=True)


def _stop_on_sigterm():
    # atexit does not run on SIGTERM's default action; exiting does.
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _exit_on_signal)


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


def settings_for(clusters: Clusters, port: int, name: str) -> dict:
    """Return a Django DATABASES entry for database ``name`` on ``port``."""
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": clusters.host,
        "PORT": str(port),
        "USER": "postgres",
        "NAME": name,
    }


# What the tests use, given Django connections to the primary and the standby.


def _scalar(connection, sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def wait_for_replay(primary, standby, timeout: float = 30):
    """Wait until ``standby`` has replayed everything ``primary`` committed so far."""
    lsn = _scalar(primary, "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + timeout
    while not _scalar(standby, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the standby has not replayed up to {lsn} in {timeout} s")
        time.sleep(0.02)


def pause_replay(standby, timeout: float = 30):
    """Freeze ``standby``: it keeps receiving WAL but applies none of it."""
    _scalar(standby, "SELECT pg_wal_replay_pause()::text")
    deadline = time.monotonic() + timeout
    while _scalar(standby, "SELECT pg_get_wal_replay_pause_state()") != "paused":
        if time.monotonic() > deadline:
            raise RuntimeError("the standby did not pause its replay")
        time.sleep(0.02)


def resume_replay(standby):
    """Let ``standby`` apply the WAL it has received."""
    _scalar(standby, "SELECT pg_wal_replay_resume()::text")


@contextmanager
def paused_replay(primary, standby):
    """Make lag: inside, nothing ``primary`` commits reaches ``standby``."""
    wait_for_replay(primary, standby)
    pause_replay(standby)
    try:
        yield
    finally:
        resume_replay(standby)
        wait_for_replay(primary, standby)


def point_mirrors_at_standby(connections, replica_of: dict[str, str]):
    """Point each TEST MIRROR replica at the standby's copy of its primary's test database.

    The test run gives a mirror its primary's settings; the copy on the
    standby has the same name, replicated from the primary's CREATE DATABASE.
    """
    for primary, replica in replica_of.items():
        connection = connections[replica]
        connection.close()
        connection.settings_dict = {
            **connections[primary].settings_dict,
            "PORT": str(_clusters.standby_port),
            "TEST": {**connections[primary].settings_dict["TEST"], "MIRROR": primary},
        }

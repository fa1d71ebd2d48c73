"""A throwaway PostgreSQL + PostGIS cluster in a temp dir, for tests and benchmarks."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PG_BINDIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")


def find_pg_bindir() -> Path | None:
    """Return the directory holding initdb/pg_ctl of a Debian PostgreSQL, or None."""
    for d in PG_BINDIRS:
        if Path(d, "initdb").exists():
            return Path(d)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def postgis_available() -> bool:
    """Return True when PostgreSQL binaries and the PostGIS extension files are installed."""
    bindir = find_pg_bindir()
    if bindir is None:
        return False
    version = bindir.parent.name
    return Path(f"/usr/share/postgresql/{version}/extension/postgis.control").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TempCluster:
    """A running throwaway cluster; `stop()` removes it."""

    datadir: Path
    port: int
    bindir: Path
    user: str

    def url(self, dbname: str = "postgres", driver: str = "psycopg2") -> str:
        """SQLAlchemy URL of a database in this cluster."""
        return f"postgresql+{driver}://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, dbname: str) -> str:
        """Create a database with PostGIS enabled and return its SQLAlchemy URL."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
            cur.execute(f'CREATE DATABASE "{dbname}"')
        conn.close()
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname=dbname)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        conn.close()
        return self.url(dbname)

    def stop(self) -> None:
        """Stop the server and delete its data directory."""
        _run_as(self.user, [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m",
                            "immediate", "stop"], check=False)
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def _run_as(user: str, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0 and user != "root":
        pw = pwd.getpwnam(user)

        def demote() -> None:
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)

        return subprocess.run(cmd, check=check, capture_output=True, text=True,
                              preexec_fn=demote, env={**os.environ, "HOME": pw.pw_dir})
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def start_cluster(shared_buffers: str = "128MB",
                  extra: dict[str, str] | None = None) -> TempCluster:
    """Initialise and start a cluster on a free loopback port (fsync off), ready to use."""
    bindir = find_pg_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql-15-postgis-3)")
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    base = Path(tempfile.mkdtemp(prefix="gridmgr-pg-"))
    datadir = base / "data"
    if os.geteuid() == 0:
        pw = pwd.getpwnam(user)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    _run_as(user, [str(bindir / "initdb"), "-D", str(datadir), "-U", user, "-A", "trust",
                   "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
    port = _free_port()
    settings = {
        "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
        "listen_addresses": "'127.0.0.1'", "port": str(port),
        "unix_socket_directories": f"'{base}'", "shared_buffers": shared_buffers,
        "max_connections": "100", "max_wal_size": "4GB",
    }
    settings.update(extra or {})
    with open(datadir / "postgresql.conf", "a") as fh:
        for k, v in settings.items():
            fh.write(f"{k} = {v}\n")
    _run_as(user, [str(bindir / "pg_ctl"), "-D", str(datadir), "-l", str(base / "log"), "-w",
                   "start"])
    cluster = TempCluster(datadir=datadir, port=port, bindir=bindir, user=user)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return cluster
        except OSError:
            time.sleep(0.1)
    cluster.stop()
    raise RuntimeError(f"PostgreSQL did not start; see {base / 'log'}")

"""A throwaway PostgreSQL cluster for the tests: its own folder, a free port, 127.0.0.1 only.

Postgres refuses to run as root, so as root the server runs as the ``postgres``
system user (Debian's package creates it). When no server binaries or no usable
user exist, :func:`start` raises :class:`Unavailable` saying what is missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class Unavailable(RuntimeError):
    pass


def _binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@dataclass
class Cluster:
    folder: Path
    port: int
    user: str
    as_user: list[str]
    pg_ctl: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "DAGSTER_POSTGRES_HOST": "127.0.0.1",
            "DAGSTER_POSTGRES_PORT": str(self.port),
            "DAGSTER_POSTGRES_USER": self.user,
            "DAGSTER_POSTGRES_PASSWORD": "",
            "DAGSTER_POSTGRES_DB": "dagster",
        }

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, self.pg_ctl, "-D", str(self.folder / "data"), "stop", "-m", "fast"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def start() -> Cluster:
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not initdb or not pg_ctl:
        raise Unavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed; `apt-get install postgresql`"
        )
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="pg-test-"))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable(
                "running as root and there is no `postgres` user to run the server as"
            ) from None
        if not runuser:
            raise Unavailable("running as root and `runuser` is missing")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
        as_user = [runuser, "-u", "postgres", "--"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = folder / "data"
    init = subprocess.run(
        [
            *as_user,
            initdb,
            "-D",
            str(data),
            "-U",
            "dagster",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if init.returncode != 0:
        raise Unavailable(f"initdb failed: {init.stderr.strip()[-300:]}")
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {folder} -c fsync=off"
    run = subprocess.run(
        [
            *as_user,
            pg_ctl,
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(folder / "log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    if run.returncode != 0:
        log = (folder / "log").read_text() if (folder / "log").exists() else ""
        raise Unavailable(f"postgres did not start: {run.stderr.strip()[-200:]} {log[-300:]}")
    cluster = Cluster(folder, port, "dagster", as_user, pg_ctl)
    created = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "dagster",
            "-d",
            "postgres",
            "-c",
            "CREATE DATABASE dagster",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if created.returncode != 0:
        cluster.stop()
        raise Unavailable(f"cannot create the database: {created.stderr.strip()}")
    return cluster

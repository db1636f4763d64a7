"""The demo's PostgreSQL cluster (`sijill demo --store postgresql`): one PostgreSQL 15 cluster
in DATA_DIR/postgresql, one database per demo agency, started on a free loopback port for each
run and stopped when the demo stops.

The cluster is the demo's own, like its chain: made once (initdb), started again by the next
run with its databases kept, deleted by `sijill demo --reset`. It listens on 127.0.0.1 only (no
Unix socket), and its superuser `postgres` has a random password (scram-sha-256), kept in
DATA_DIR/postgresql/password (mode 0600); the nodes get it in PGPASSWORD, never on their
command line, so the store URIs they are given and the summary shows carry none.

PostgreSQL refuses to run as root: as root, initdb and pg_ctl run as the `postgres` system user
(`runuser -u postgres --`), which owns DATA_DIR/postgresql and must be able to reach it. The
binaries are found in /usr/lib/postgresql/15/bin, else `pg_config --bindir` (the Debian package
`postgresql`). Standard library only: the databases are made with psycopg, imported there.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
from pathlib import Path

from node.errors import NodeError

DEBIAN_BINDIR = Path("/usr/lib/postgresql/15/bin")
START_TIMEOUT = 60
"""Seconds `pg_ctl start` and `pg_ctl stop` wait for the server."""


def find_bindir() -> Path:
    """The directory of PostgreSQL's initdb and pg_ctl; `NodeError` if PostgreSQL is not installed."""
    candidates = [DEBIAN_BINDIR]
    pg_config = shutil.which("pg_config")
    if pg_config:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip():
            candidates.append(Path(done.stdout.strip()))
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise NodeError(
        f"PostgreSQL is not installed (no initdb in {DEBIAN_BINDIR} nor in `pg_config --bindir`): "
        "install the Debian package `postgresql`, or run the demo without --store postgresql"
    )


class DemoCluster:
    """`start(databases)`, then `uri(name)` for each, `stop()`; `remove()` deletes it all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "postgresql.log"
        self.password_file = root / "password"
        self.port = 0
        self._as_postgres = os.geteuid() == 0
        self._bindir: Path | None = None

    @property
    def env(self) -> dict[str, str]:
        """What a process connecting to the cluster needs in its environment (the password)."""
        return {"PGPASSWORD": self.password_file.read_text().strip()}

    def uri(self, dbname: str, *, password: bool = False) -> str:
        """The libpq URI of a database of the cluster; with the password for this process only."""
        secret = f":{self.password_file.read_text().strip()}" if password else ""
        return f"postgresql://postgres{secret}@127.0.0.1:{self.port}/{dbname}"

    def start(self, databases: list[str]) -> bool:
        """Make the cluster if there is none, start it on a free loopback port and make the
        databases it lacks. Whether it was made now (its databases are new, and empty)."""
        self._bindir = find_bindir()
        self.root.mkdir(mode=0o700, exist_ok=True)
        self._own(self.root)
        self._check_reachable()
        made = not (self.data / "PG_VERSION").is_file()
        if made:
            shutil.rmtree(self.data, ignore_errors=True)  # what an interrupted initdb left
            self._initdb()
        self._stop_stale()
        self.port = _free_port()
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w",
                  "-t", str(START_TIMEOUT), "start")  # fmt: skip
        self._create_databases(databases)
        return made

    def running(self) -> bool:
        """Whether a server runs on the cluster's files (`pg_ctl status`)."""
        if self._bindir is None or not (self.data / "postmaster.pid").exists():
            return False
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False) == 0

    def alive(self) -> bool:
        """Whether the server the cluster's `postmaster.pid` names still runs: a cheap check (no
        process started) for a watch loop; `running()` asks `pg_ctl`."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
            os.kill(pid, 0)
        except PermissionError:  # it runs, as another user
            return True
        except (OSError, ValueError):
            return False
        return True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`pg_ctl stop`, a clean shutdown by default) if it runs."""
        if self.running():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", str(START_TIMEOUT), "stop")

    def remove(self) -> None:
        """Stop a server left running on the cluster's files (a demo killed), then delete them."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(NodeError):  # no PostgreSQL: nothing of it runs
                self._bindir = find_bindir()
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _stop_stale(self) -> None:
        """A demo killed with SIGKILL left its server running: the lock the demo holds says no
        other demo uses it, so it is stopped."""
        if self.running():
            self.stop()

    def _initdb(self) -> None:
        self.password_file.unlink(missing_ok=True)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
        pwfile = self.root / "initdb-password"  # the postgres user's copy, for initdb only
        pwfile.unlink(missing_ok=True)
        shutil.copyfile(self.password_file, pwfile)
        os.chmod(pwfile, 0o600)
        self._own(pwfile)
        try:
            self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", f"--pwfile={pwfile}", "-E", "UTF8",
                "--locale=C", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)

    def _create_databases(self, names: list[str]) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.uri("postgres", password=True), autocommit=True) as conn:
            existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
            for name in names:
                if name not in existing:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def _check_reachable(self) -> None:
        if self._as_postgres and self._run("/usr/bin/test", "-w", str(self.root), check=False) != 0:
            raise NodeError(
                f"the postgres user cannot write {self.root} (PostgreSQL refuses to run as root, so the "
                "demo runs it as postgres): let others enter the directories above it, or choose another "
                "--data-dir"
            )

    def _own(self, path: Path) -> None:
        """Give `path` to the `postgres` user when the cluster runs as it."""
        if self._as_postgres:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise NodeError(
                    "there is no `postgres` system user to run PostgreSQL as (it refuses to run as "
                    "root): install the Debian package `postgresql`"
                ) from None
            os.chown(path, user.pw_uid, user.pw_gid)

    def _run(self, program: str, *args: str, check: bool = True) -> int:
        assert self._bindir is not None, "find_bindir() first"
        command = [program if program.startswith("/") else str(self._bindir / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.root, check=False)
        if check and done.returncode != 0:
            lines = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()
            raise NodeError(
                f"{program} failed for the demo's PostgreSQL cluster ({lines[-1]}); "
                f"see {self.log}, or start afresh with `sijill demo --reset`"
            )
        return done.returncode


def _free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

"""A throwaway PostgreSQL 15 cluster for tests: initdb in a temporary directory, a free loopback
port, `pg_ctl start -w`; databases made on demand; stopped and removed at the end.

PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` system user
(`runuser -u postgres --`) in a directory under /tmp that user owns. The superuser `postgres`
has a random password and connections over TCP must give it (scram-sha-256): the URIs the
tests use carry a password, so that they show it never reaches a message or a log.
`scripts/system-packages.sh test` installs the `postgresql` package.

For replication tests: `cluster.base_backup(standby="s1")` makes a streaming standby of a cluster
(`pg_basebackup -R`, named `s1` in `synchronous_standby_names`), `base_backup()` a copy that
starts as a primary of its own; `kill()` SIGKILLs every process of a cluster (a machine lost),
`promote()` and `follow(primary)` are the failover steps. Waits are on the server's own state
(`pg_isready`, pg_stat_replication, pg_stat_wal_receiver), never fixed sleeps.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.chain.devchain import free_port

PG_BIN = Path(os.environ.get("SIJILL_PG_BIN", "/usr/lib/postgresql/15/bin"))


class PgCluster:
    """`with PgCluster() as cluster: uri = cluster.create_database("t1")`."""

    def __init__(self, *, fsync: bool = True) -> None:
        if not (PG_BIN / "initdb").is_file():
            raise RuntimeError(
                f"no PostgreSQL binaries in {PG_BIN}: run `sh scripts/system-packages.sh test` "
                "(or set SIJILL_PG_BIN)"
            )
        self.fsync = fsync
        self.password = secrets.token_urlsafe(16)
        self.port = 0
        self.dir = Path(tempfile.mkdtemp(prefix="sijill-pg-"))
        self.data = self.dir / "data"
        self._as_postgres = os.geteuid() == 0
        self._databases = 0

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> PgCluster:
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        self._own(self.dir, pwfile)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", f"--pwfile={pwfile}", "-E", "UTF8",
            "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256",
        )  # fmt: skip
        pwfile.unlink()
        self.port = free_port()
        self._start()
        return self

    def _start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        if not self.fsync:
            options += " -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            # immediate: no shutdown checkpoint, the files are removed next
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def down(self) -> None:
        """Stop the server at once, as a crash would; its files stay (`up` starts it again)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def up(self) -> None:
        """Start the server (again) on its port."""
        self._start()

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend at once (its process group: pg_ctl starts it
        in a session of its own), as when the machine is lost; returns once the port refuses."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.killpg(pid, signal.SIGKILL)
        wait_for(lambda: not self.ready(), what=f"the server on port {self.port} to die")
        (self.data / "postmaster.pid").unlink()  # a dead machine's; stop() then has nothing to stop

    def ready(self) -> bool:
        """The server accepts connections (`pg_isready`)."""
        command = [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "2"]
        return subprocess.run(command, check=False).returncode == 0

    # -- replication --------------------------------------------------------------------------

    def set(self, name: str, value: str) -> None:
        """`ALTER SYSTEM SET name = 'value'` and reload (settings that need no restart; new
        sessions have it on return, those already open from their next statement on)."""
        from psycopg import sql

        self.sql(
            "postgres", sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
        )
        self.sql("postgres", "SELECT pg_reload_conf()")
        # The reload is asynchronous: a backend started once the postmaster has it sees it.
        shown = sql.SQL("SHOW {}").format(sql.Identifier(name))
        wait_for(lambda: self.sql("postgres", shown)[0][0] == value, what=f"{name} to be reloaded")

    def base_backup(self, *, standby: str | None = None, start: bool = True) -> PgCluster:
        """A new cluster from a `pg_basebackup` of this running one (its WAL streamed along,
        `-c fast`), started on a port of its own: a streaming standby whose application_name is
        `standby` (`-R`), or with None a copy that starts as a primary of its own; not started
        with `start=False` (then `recover` it)."""
        copy = PgCluster(fsync=self.fsync)
        copy.password = self.password
        self._own(copy.dir)
        self._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
            "-D", str(copy.data), "-X", "stream", "-c", "fast", *(["-R"] if standby else []),
            env={"PGPASSWORD": self.password},
        )  # fmt: skip
        if standby:  # the last line of the file wins: -R's conninfo, with the standby's name
            copy._configure({"primary_conninfo": self._conninfo(standby)})
        copy.port = free_port()
        if start:
            copy._start()
        if standby:
            self.wait_standby(standby)
        return copy

    def recover(self, settings: dict[str, str]) -> None:
        """Start a base backup made with `start=False` as a point-in-time recovery
        (recovery.signal and `settings`: restore_command, recovery_target_time, ...); returns
        once it has promoted and takes writes."""
        self._configure(settings)
        (self.data / "recovery.signal").touch()
        self._own(self.data / "recovery.signal")
        self._start()
        query = "SELECT NOT pg_is_in_recovery()"
        wait_for(lambda: bool(self.sql("postgres", query)[0][0]), what="the recovery to end")

    def _configure(self, settings: dict[str, str]) -> None:
        with (self.data / "postgresql.auto.conf").open("a") as conf:
            conf.writelines(f"{name} = '{value}'\n" for name, value in settings.items())

    def archive(self) -> Path:
        """Turn on WAL archiving (`archive_command` copying each segment to a directory) and
        restart; the directory."""
        archive = self.dir / "archive"
        archive.mkdir()
        self._own(archive)
        self._configure(
            {"archive_mode": "on", "archive_command": f"test ! -f {archive}/%f && cp %p {archive}/%f"}
        )
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self._start()  # not `pg_ctl restart`: it forgets the log file
        return archive

    def wait_standby(self, name: str, sync_state: str | None = None) -> None:
        """Wait until standby `name` streams from this primary, and with `sync_state` until it
        shows it (`quorum` under `ANY n (...)`: a moment after it starts streaming)."""
        query = "SELECT 1 FROM pg_stat_replication WHERE application_name = %s AND state = 'streaming'"
        params: tuple[str, ...] = (name,)
        if sync_state:
            query, params = query + " AND sync_state = %s", (name, sync_state)
        what = f"standby {name} to stream from port {self.port}" + (f" as {sync_state}" if sync_state else "")
        wait_for(lambda: bool(self.sql("postgres", query, params)), what=what)

    def promote(self) -> None:
        """`pg_ctl promote -w`: this standby becomes a primary, on a new timeline."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "promote")

    def follow(self, primary: PgCluster, name: str) -> None:
        """Point this standby at `primary` (primary_conninfo, reloaded: PostgreSQL 13 and later
        need no restart; `recovery_target_timeline = 'latest'`, the default, follows the
        promotion's new timeline); returns once `primary` sees it streaming."""
        self.set("primary_conninfo", primary._conninfo(name))
        primary.wait_standby(name)

    def receive_lsn(self) -> int:
        """How far this standby's WAL reaches on its disk (`pg_last_wal_receive_lsn()`), as a number."""
        rows = self.sql("postgres", "SELECT pg_last_wal_receive_lsn() - '0/0'::pg_lsn")
        return int(rows[0][0] or 0)

    def _conninfo(self, application_name: str) -> str:
        return (
            f"host=127.0.0.1 port={self.port} user=postgres password={self.password} "
            f"application_name={application_name}"
        )

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- databases ----------------------------------------------------------------------------

    def uri(self, dbname: str = "postgres") -> str:
        """A libpq URI of `dbname`, with the superuser's password in it."""
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database (named `name`, else t1, t2, ...); its URI."""
        import psycopg

        self._databases += 1
        name = name or f"t{self._databases}"
        with psycopg.connect(self.uri(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.uri(name)

    def sql(self, dbname: str, query: Any, params: Any = None) -> list[tuple[Any, ...]]:
        """Run one statement in `dbname` as the superuser; its rows (none for a command)."""
        import psycopg

        with psycopg.connect(self.uri(dbname), autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def dump(self, dbname: str) -> bytes:
        """`pg_dump` of `dbname`: what a DBA's backup of it holds."""
        env = {**os.environ, "PGPASSWORD": self.password}
        args = [str(PG_BIN / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", dbname]
        return subprocess.run(args, env=env, check=True, capture_output=True).stdout

    def files(self) -> bytes:
        """Every byte of the cluster's files (tables, WAL, logs), after a checkpoint."""
        self.sql("postgres", "CHECKPOINT")
        return b"".join(f.read_bytes() for f in sorted(self.dir.rglob("*")) if f.is_file())

    def log(self) -> str:
        """The server's log."""
        return (self.dir / "log").read_text(errors="replace")

    def _own(self, *paths: Path) -> None:
        """Give `paths` to the `postgres` user when the cluster runs as it."""
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            for path in paths:
                os.chown(path, user.pw_uid, user.pw_gid)

    def _run(self, program: str, *args: str, check: bool = True, env: dict[str, str] | None = None) -> None:
        command = [str(PG_BIN / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        environ = {**os.environ, **(env or {})}
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.dir, env=environ)
        if check and result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")


def wait_for(condition: Callable[[], bool], *, what: str, timeout: float = 60.0) -> None:
    """Poll `condition` (a query or pg_isready, each a round trip) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:g} s")
        time.sleep(0.05)

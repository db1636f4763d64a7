"""A throwaway PostgreSQL 15 cluster for tests: initdb in a temporary directory, a free loopback
port, `pg_ctl start -w`; databases made on demand; stopped and removed at the end.

PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` system user
(`runuser -u postgres --`) in a directory under /tmp that user owns. The superuser `postgres`
has a random password and connections over TCP must give it (scram-sha-256): the URIs the
tests use carry a password, so that they show it never reaches a message or a log.
`scripts/system-packages.sh test` installs the `postgresql` package.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
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
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            for path in (self.dir, pwfile):
                os.chown(path, user.pw_uid, user.pw_gid)
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

    def sql(self, dbname: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
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

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        command = [str(PG_BIN / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.dir)
        if check and result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")

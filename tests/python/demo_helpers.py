"""`sijill demo` as a real background process on free ports, for the tests that need the whole
system running (test_demo.py, test_privacy_and_secrets.py)."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from node.chain.toolchain import PROJECT_ROOT

SUMMARY = "Sijill demo running; press Ctrl-C to stop."
#: The demo's agencies, in its order, and the record type each anchors.
KINDS = {"REPD": "title", "CSO": "marriage", "CRA": "commercial"}
AGENCIES = tuple(KINDS)


def port_base() -> int:
    """A random base in 20000-40000 with it and the next two ports free (the demo's three APIs)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randint(20_000, 40_000 - 2)
        if all(_bindable(base + i) for i in range(3)):
            return base
    raise AssertionError("no three consecutive free ports between 20000 and 40000")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def clean_env() -> dict[str, str]:
    """This process's environment without any SIJILL_ setting (a developer's shell may have some)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SIJILL_")}


class DemoProcess:
    """`sijill demo` running in the background, its output collected line by line.

    `umask` is the demo's (and so its children's) umask, None for this process's."""

    def __init__(self, data_dir: Path, chain_port: int, api_base: int, *, umask: int | None = None) -> None:
        args = [
            "--data-dir",
            str(data_dir),
            "--chain-port",
            str(chain_port),
            "--api-port-base",
            str(api_base),
        ]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli", "demo", *args],
            cwd=PROJECT_ROOT,
            env={**clean_env(), "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            umask=-1 if umask is None else umask,
            # As a shell's background job starts it (`make run &`, CI's scripts): with SIGINT
            # ignored, which Python then leaves ignored unless the program says otherwise.
            preexec_fn=_ignore_sigint,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_summary(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while SUMMARY not in self.lines:
            if self.process.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"demo exited with {self.process.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"no summary within {timeout}s:\n{self.output}")
            time.sleep(0.2)

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C; the exit status, which must come within `timeout`."""
        self.process.send_signal(signal.SIGINT)
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"demo still running {timeout}s after SIGINT:\n{self.output}") from None
        self._reader.join(5)
        return status

    def stop(self) -> None:
        """Leave nothing behind whatever happened (a failing test)."""
        for pid in children(self.process.pid):
            os.kill(pid, signal.SIGKILL)
        self.process.kill()
        self.process.wait()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)

"""The admin socket: a running node takes operator commands without any network exposure.

LevelDB lets one process open a store, so while `sijill serve` (or `sijill node run`) runs, a
CLI command that needs the store (`sijill officer add|list|revoke`, `sijill node backup`) asks
the node instead, over a Unix domain socket in the node's data directory (`admin.sock`). The
socket is made with mode 0600, owned by the node's user: whoever may connect may read the data
directory, which holds the store and the keystore already. It exists while the node runs and is
removed when it stops; a socket file left by a killed node is replaced at the next start.

The protocol is one JSON object a line each way, one request a connection:
`{"action": "officer.add", ...}` → `{"ok": true, "result": ...}` or
`{"ok": false, "error": "<one line>"}`. The actions are node/admin_actions.py's; each writes
its audit entry as the same command does on a stopped node.

May import `node.errors` and the standard library; never `api` or `cli`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.errors import NodeError

log = logging.getLogger("sijill.admin")

SOCKET_NAME = "admin.sock"
MAX_REQUEST = 64 * 1024

Action = Callable[[dict[str, Any]], Any]
"""An admin action: the request's fields in, a JSON-able result out; `NodeError` to refuse."""


def admin_socket_path(data_dir: Path) -> Path:
    """Where the node of `data_dir` listens for admin commands."""
    return data_dir / SOCKET_NAME


class AdminServer:
    """Serves `actions` on a Unix socket at `path` from a thread, until `close()`."""

    def __init__(self, path: Path, actions: dict[str, Action]) -> None:
        self.path = path
        self.actions = actions
        if path.is_socket():
            if node_answers(path):
                raise NodeError(f"another process serves the admin socket {path}: is the node running?")
            path.unlink()  # left by a node that was killed
        umask = os.umask(0o177)  # the socket is born 0600: no window where others could connect
        try:
            self._server = _Server(str(path), _Handler)
        finally:
            os.umask(umask)
        os.chmod(path, 0o600)
        self._server.actions = actions
        self._thread = threading.Thread(target=self._server.serve_forever, name="sijill-admin", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and remove the socket file."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def call_admin(path: Path, request: dict[str, Any], *, timeout: float = 600.0) -> Any:
    """Send `request` to the node listening at `path`; its result, or `NodeError` with the node's
    one-line refusal."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(path))
            conn.sendall(json.dumps(request).encode() + b"\n")
            conn.shutdown(socket.SHUT_WR)
            answer = b"".join(iter(lambda: conn.recv(65536), b""))
    except PermissionError:
        raise NodeError(f"cannot use the node's admin socket {path}: run as the node's user") from None
    except (OSError, TimeoutError) as exc:
        raise NodeError(f"the node does not answer on its admin socket {path}: {exc}") from None
    try:
        reply = json.loads(answer)
    except ValueError:
        raise NodeError(f"the node's answer on {path} is not JSON: {answer[:80]!r}") from None
    if not reply.get("ok"):
        raise NodeError(str(reply.get("error", "the node refused the request")))
    return reply.get("result")


def node_answers(path: Path) -> bool:
    """Whether a node listens on the admin socket `path` (a file left by a killed node does not)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    actions: dict[str, Action]


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        line = self.rfile.readline(MAX_REQUEST + 1)
        if not line:
            return  # a probe (`node_answers`): connected, asked nothing
        try:
            request = json.loads(line) if len(line) <= MAX_REQUEST else None
            if not isinstance(request, dict) or not isinstance(request.get("action"), str):
                raise NodeError('a request is one JSON object with an "action", on one line')
            action = self.server.actions.get(request["action"])
            if action is None:
                raise NodeError(f"unknown admin action {request['action']!r}")
            reply: dict[str, Any] = {"ok": True, "result": action(request)}
        except NodeError as exc:
            reply = {"ok": False, "error": str(exc)}
        except ValueError:
            reply = {"ok": False, "error": "the request is not JSON"}
        except Exception as exc:  # the node goes on serving; the operator sees what went wrong
            log.exception("admin action failed")
            reply = {"ok": False, "error": f"the node failed: {type(exc).__name__}: {exc}"}
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client went away
            self.wfile.write(json.dumps(reply, ensure_ascii=False).encode() + b"\n")

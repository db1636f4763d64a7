"""Local HTTP servers on free loopback ports that stand between the node and a chain: the
server itself (`LocalServer`, also behind a forwarder recording calls and one answering like
Besu's PERM API), `FaultyRpc`, a JSON-RPC proxy that misbehaves when told, used by the
transaction manager's tests and by the soak (scripts/soak.py) to slow the node's chain down, and
`SilentServer`, an endpoint that accepts connections and never answers (a hung chain node)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from eth_utils.crypto import keccak
from hexbytes import HexBytes

SEND = "eth_sendRawTransaction"


class LocalServer:
    """Serves POSTs with `handle(request_handler)` on threads until `close()`; `url` says where."""

    def __init__(self, handle: Callable[[BaseHTTPRequestHandler], None]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class FaultyRpc:
    """A JSON-RPC proxy on a free local port that can be told to misbehave.

    It forwards each request to `upstream` and, when told, drops the connection, answers 502,
    answers late (after the client gave up, while the node did get the request), swallows
    `eth_sendRawTransaction` (answers success and forwards nothing: a transaction the pool
    lost), or answers a chosen JSON-RPC error, with or without forwarding the request first.
    `slow` seconds are added before every call is forwarded (a congested link or an overloaded
    node), and an upstream that does not answer gets 502, as from a gateway in front of it.
    Between `hang()` and `release()` every request is read and held without an answer (a chain
    node that hangs); `held` counts them.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.calls: Counter[str] = Counter()
        self.delay = 1.0
        self.slow = 0.0
        self.swallow_sends = False
        self._faults: list[tuple[str | None, str, dict[str, Any] | None]] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._released.set()
        self.held = 0
        self._server = LocalServer(self._handle)
        self.url = self._server.url

    def inject(
        self, action: str, method: str | None = None, times: int = 1, error: tuple[int, str] | None = None
    ) -> None:
        """Misbehave (`drop`, `502`, `late`, `swallow`) on the next `times` calls of `method`; or
        answer the JSON-RPC `error` (code, message): `error` forwards nothing, `forward-error`
        forwards the request and answers the error instead of the node's answer."""
        answer = {"code": error[0], "message": error[1]} if error is not None else None
        with self._lock:
            self._faults += [(method, action, answer)] * times

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def hang(self) -> None:
        """Hold every request from now on, answering none, until `release()`."""
        self._released.clear()

    def release(self) -> None:
        """Serve again; the requests held so far are dropped unanswered (their clients gave up)."""
        self._released.set()

    def close(self) -> None:
        self.release()
        self._server.close()

    def _take_fault(self, method: str) -> tuple[str | None, dict[str, Any] | None]:
        with self._lock:
            self.calls[method] += 1
            for i, (wanted, action, error) in enumerate(self._faults):
                if wanted in (None, method):
                    del self._faults[i]
                    return action, error
            if self.swallow_sends and method == SEND:
                return "swallow", None
            return None, None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers["Content-Length"]))
        if not self._released.is_set():
            with self._lock:
                self.held += 1
            self._released.wait()
            handler.close_connection = True
            return
        request = json.loads(body)
        single: dict[str, Any] = request if isinstance(request, dict) else {"method": "batch", "id": None}
        action, error = self._take_fault(single.get("method", ""))
        refusal = json.dumps({"jsonrpc": "2.0", "id": single.get("id"), "error": error}).encode()
        try:
            if action == "drop":
                handler.close_connection = True  # no status line, nothing: the client sees a reset
                return
            if action == "502":
                self._reply(handler, 502, b"bad gateway")
                return
            if action == "swallow":
                # What a node that accepted and then lost the transaction would say.
                tx_hash = "0x" + keccak(HexBytes(single["params"][0])).hex()
                answer = {"jsonrpc": "2.0", "id": single["id"], "result": tx_hash}
                self._reply(handler, 200, json.dumps(answer).encode())
                return
            if action == "error":
                self._reply(handler, 200, refusal)
                return
            if self.slow > 0:
                time.sleep(self.slow)
            try:
                upstream = requests.post(
                    self.upstream, data=body, headers={"Content-Type": "application/json"}, timeout=10
                )
            except requests.RequestException:
                self._reply(handler, 502, b"bad gateway: the node does not answer")
                return
            if action == "late":
                time.sleep(self.delay)  # the node has it; the client has given up by now
            if action == "forward-error":
                self._reply(handler, 200, refusal)  # the node has it, and says so
                return
            self._reply(handler, upstream.status_code, upstream.content)
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, content: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)


class SilentServer:
    """A TCP server on a free loopback port that accepts every connection and never answers a
    byte: an endpoint that hangs (a chain node stuck, a firewall that swallows packets after the
    handshake). `url` is its http URL; `accepted` counts the connections; `close()` drops them."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}/rpc"
        self.accepted = 0
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._socket.settimeout(0.05)  # so the accepting thread sees close() soon
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            with self._lock:
                self.accepted += 1
                self._connections.append(connection)  # kept open, never read or answered

    def close(self) -> None:
        self._closed.set()
        self._socket.close()
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()

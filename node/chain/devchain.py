"""The development chain: a real anvil node configured like the production Besu network.

Besu cannot be installed on these machines, so development and tests run anvil (from the npm
package `@foundry-rs/anvil`) set up the way Sijill's Besu QBFT network is: free gas (base fee
and gas price zero), a block time of about a second (so code meets pending transactions,
nonces and receipts as on Besu, never instant mining), the same fork rules as the genesis
(`--hardfork shanghai`, matching the contracts' EVM target), and a persisted state under a
data directory, so a restarted dev chain still holds its deployment.
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import requests

from node.chain.toolchain import PROJECT_ROOT
from node.errors import ChainError

DEV_CHAIN_ID = 31337

#: anvil's well-known development mnemonic. Its keys are public: never use them outside a dev chain.
DEV_MNEMONIC = "test test test test test test test test test test test junk"


def anvil_binary(root: Path = PROJECT_ROOT) -> Path:
    """anvil: `ANVIL_BINARY` if set, else the binary the npm package ships for this platform."""
    configured = os.environ.get("ANVIL_BINARY")
    if configured:
        path = Path(configured)
    else:
        arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "amd64")
        system = platform.system().lower()
        path = root / "node_modules" / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / "anvil"
    if not path.exists():
        raise ChainError(f"anvil not found at {path}: run `npm ci` (or set ANVIL_BINARY)")
    return path


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class DevChainConfig:
    """How to run anvil. `data_dir` None means a throw-away chain (tests)."""

    port: int = 8545
    host: str = "127.0.0.1"
    chain_id: int = DEV_CHAIN_ID
    block_time: float = 1.0
    #: As the Besu genesis `sijill network init` writes (node/network/genesis.py): the node's largest
    #: call, a 1,024-leaf supersede, needs about 62 M gas, which anvil's usual 30 M refuses.
    gas_limit: int = 100_000_000
    hardfork: str = "shanghai"
    accounts: int = 10
    data_dir: Path | None = None
    #: wei; 0 is the free-gas network. Tests set it non-zero to exercise EIP-1559 fees.
    base_fee: int = 0
    #: seconds between two dumps of the state (with `data_dir`); it is dumped on exit as well
    state_interval: int = 5
    extra_args: tuple[str, ...] = field(default=())

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self, binary: Path) -> list[str]:
        args = [
            str(binary),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--block-time",
            f"{self.block_time:g}",
            "--hardfork",
            self.hardfork,
            "--gas-limit",
            str(self.gas_limit),
            # Free gas by default, as on the Besu network (zeroBaseFee, min-gas-price 0).
            "--base-fee",
            str(self.base_fee),
            "--gas-price",
            "0",
            "--disable-min-priority-fee",
            "--accounts",
            str(self.accounts),
            "--mnemonic",
            DEV_MNEMONIC,
        ]
        if self.data_dir is not None:
            # Dump every few seconds as well as on exit, so a killed chain loses little.
            args += [
                "--state",
                str(self.data_dir / "state.json"),
                "--state-interval",
                str(self.state_interval),
            ]
        return args + list(self.extra_args)


class DevChain:
    """A running anvil process. Use as a context manager, or `start()` and `stop()`."""

    def __init__(self, config: DevChainConfig, root: Path = PROJECT_ROOT) -> None:
        self.config = config
        self._binary = anvil_binary(root)
        self._process: subprocess.Popen[bytes] | None = None
        self._log_copier: threading.Thread | None = None

    @property
    def rpc_url(self) -> str:
        return self.config.rpc_url

    def start(self, timeout: float = 30.0) -> DevChain:
        """Start anvil and wait until it answers JSON-RPC; `ChainError` if it does not."""
        if _answers(self.rpc_url):
            raise ChainError(f"something already answers at {self.rpc_url}; choose another --port")
        log: IO[bytes] | None = None
        if self.config.data_dir is not None:
            self.config.data_dir.mkdir(parents=True, exist_ok=True)
            keep_first_genesis(self.config.data_dir / "state.json")
            log = open(self.config.data_dir / "anvil.log", "ab")  # noqa: SIM115 - closed by the copier
        self._process = subprocess.Popen(
            self.config.command(self._binary),
            stdout=subprocess.DEVNULL if log is None else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if log is not None:
            assert self._process.stdout is not None
            self._log_copier = threading.Thread(
                target=copy_anvil_log, args=(self._process.stdout, log), name="anvil-log", daemon=True
            )
            self._log_copier.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ChainError(f"anvil exited with status {self._process.returncode} (see its log)")
            if _answers(self.rpc_url):
                return self
            time.sleep(0.1)
        self.stop()
        raise ChainError(f"anvil did not answer at {self.rpc_url} within {timeout:g}s")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop anvil with SIGINT, so it dumps its state, then SIGKILL if it hangs."""
        process, self._process = self._process, None
        copier, self._log_copier = self._log_copier, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if copier is not None:
            copier.join(5)  # anvil's last lines (the state dump) reach the log

    def kill(self) -> None:
        """SIGKILL anvil, as a crash or power cut would: its state file keeps only what its last
        dump held, so the blocks mined since are lost when it starts again from it."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
        if self._log_copier is not None:
            self._log_copier.join(5)
            self._log_copier = None

    def exit_status(self) -> int | None:
        """anvil's exit status if it has exited, None while it runs (or before it starts)."""
        return None if self._process is None else self._process.poll()

    def wait(self) -> int:
        """Block until anvil exits; its exit status."""
        assert self._process is not None, "not started"
        return self._process.wait()

    def __enter__(self) -> DevChain:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


_HEX_KEY = re.compile(rb"0x[0-9a-fA-F]{64}")
_LISTENING = b"Listening on "


def copy_anvil_log(source: IO[bytes], log: IO[bytes]) -> None:
    """Copy anvil's output into its log line by line, without the secrets of its banner.

    anvil starts by printing every dev account's private key and the mnemonic they come from.
    They are anvil's public development keys, but the demo's signers use them, and no log of
    Sijill's holds a private key: until the `Listening on` line that ends the banner, a 32-byte
    hex number (the banner has no hashes) and the mnemonic are replaced. Block, transaction and
    request lines after it are copied as they are."""
    with source, log:
        banner = True
        for line in source:
            if banner:
                if line.startswith(_LISTENING):
                    banner = False
                elif line.startswith(b"Mnemonic:") or DEV_MNEMONIC.encode() in line:
                    line = line.split(b":", 1)[0] + b": (not logged)\n"
                else:
                    line = _HEX_KEY.sub(b"(private key not logged)", line)
            log.write(line)
            log.flush()


def _answers(url: str) -> bool:
    try:
        response = requests.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=1
        )
        return response.ok and "result" in response.json()
    except (requests.RequestException, ValueError):
        return False


def keep_first_genesis(state_file: Path) -> None:
    """Keep a restarted anvil's genesis block the chain's first one.

    anvil (1.7) started from a saved state makes a genesis block of its own, which goes into
    the next dump beside the saved one; a later start takes one of the saved block-0 entries
    seemingly at random, so after a few restarts block 0 changes and the deployment, checked
    against the genesis hash, no longer matches. Dropping all but the earliest block 0 from the
    state file before each start keeps it stable. A file of another shape is left alone."""
    try:
        state = json.loads(state_file.read_text())
        blocks = state["blocks"]
        genesis = [b for b in blocks if int(b["header"]["number"], 16) == 0]
        first = min(genesis, key=lambda b: int(b["header"]["timestamp"], 16)) if genesis else None
    except (OSError, ValueError, KeyError, TypeError):
        return
    if len(genesis) < 2:
        return
    state["blocks"] = [b for b in blocks if b is first or int(b["header"]["number"], 16) != 0]
    tmp = state_file.with_name(state_file.name + ".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, state_file)

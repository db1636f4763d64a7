"""The validators' node keys: generated, written to disk, and unlocked for Besu.

A node key is a secp256k1 key whose address is the validator's and whose public key is its
enode id (`NodeKey`, `enode_url`). `sijill network init` writes it as an Ethereum keystore (or,
with `--insecure-dev-keys`, the plain hex file Besu reads); `sijill network unlock-key`
(`unlock_key`) decrypts it into that plain file on a tmpfs (docs/besu.md, "Node keys"). The
file helpers here create directories and private files with the modes keys need.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_keys.datatypes import PrivateKey
from eth_utils.address import to_checksum_address

from node.keys import KeystoreError, create_keystore, load_signer
from node.network.options import PASSPHRASE_ENV, NetworkConfigError

#: scrypt work factor n of the encrypted keys; None is eth-keyfile's default, 262144 (about a
#: second per key). Tests lower it; nothing else should.
KEYSTORE_KDF_ITERATIONS: int | None = None


@dataclass(frozen=True, slots=True)
class NodeKey:
    """A validator's secp256k1 node key: its address is the validator address, its public key
    the enode id."""

    private_key: bytes

    @property
    def public_key(self) -> bytes:
        """The 64-byte uncompressed public key without its 0x04 prefix (the enode id)."""
        return bytes(PrivateKey(self.private_key).public_key.to_bytes())

    @property
    def address(self) -> str:
        return str(PrivateKey(self.private_key).public_key.to_checksum_address())

    @classmethod
    def generate(cls) -> NodeKey:
        while True:  # a uniformly random 32-byte string is a valid key but for ~2^-128 of them
            candidate = secrets.token_bytes(32)
            try:
                PrivateKey(candidate)
            except Exception:  # out of the curve order's range: draw again
                continue
            return cls(candidate)


def enode_url(public_key: bytes, host: str, port: int) -> str:
    """`enode://<128 hex digits of the public key>@<host>:<port>` (Besu's node-keys docs)."""
    if len(public_key) != 64:
        raise ValueError(f"an enode id is the 64-byte public key, got {len(public_key)} bytes")
    ip = ipaddress.ip_address(host)
    shown = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"enode://{public_key.hex()}@{shown}:{port}"


def make_dir(path: Path) -> None:
    """A directory others may read but, whatever the umask, not write: it holds keys, or
    allow-lists Besu trusts (missing parents are made as `mkdir -p` makes them)."""
    path.mkdir(mode=0o755, parents=True, exist_ok=True)


def write_private(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 in one step; never overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def write_key(directory: Path, key: bytes, passphrase: str | None) -> Path:
    """The key as a keystore (`key.json`) or, without a passphrase, the plain hex file Besu's
    --node-private-key-file reads (`key`: 0x and 64 hex digits, as Besu writes its own)."""
    make_dir(directory)
    if passphrase is None:
        path = directory / "key"
        write_private(path, ("0x" + key.hex()).encode())
    else:
        path = directory / "key.json"
        create_keystore(path, passphrase, key, kdf_iterations=KEYSTORE_KDF_ITERATIONS)
    return path


# ---------------------------------------------------------------------------- unlock-key


def _read_node_key(path: Path, passphrase_file: Path | None) -> tuple[bytes, str]:
    """The private key in `path` (a keystore, or a plain hex key file) and its address."""
    text = path.read_text(encoding="utf-8").strip()
    if text.startswith("{"):
        account = load_signer(path, passphrase_file=passphrase_file, passphrase_env=PASSPHRASE_ENV)
        return bytes(account.key), account.address
    _refuse_shared(path)
    try:
        key = bytes.fromhex(text.removeprefix("0x"))
        address = Account.from_key(key).address
    except (ValueError, TypeError):
        raise KeystoreError(f"{path} holds neither a keystore nor a 32-byte hex key") from None
    if len(key) != 32:
        raise KeystoreError(f"{path} holds neither a keystore nor a 32-byte hex key")
    return key, address


def _refuse_shared(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if os.name == "posix" and mode & 0o077:
        raise KeystoreError(f"{path} has mode {mode:04o}, so group or others may read it: `chmod 600 {path}`")


def find_key_file(node: Path) -> Path:
    """The key of a validator directory (`key.json`, else `key`), or `node` itself if a file."""
    if node.is_dir():
        for name in ("key.json", "key"):
            if (node / name).is_file():
                return node / name
        raise KeystoreError(f"{node} holds no node key (key.json or key)")
    if not node.exists():
        raise KeystoreError(f"no node key at {node}")
    return node


def expected_address(node: Path) -> str | None:
    """The address the manifest (network.json beside the validator directory) records for it."""
    directory = node if node.is_dir() else node.parent
    manifest = directory.parent / "network.json"
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text())
        for entry in data.get("validators", []):
            if entry.get("name") == directory.name:
                return to_checksum_address(entry["address"])
    except (OSError, ValueError, KeyError, TypeError):
        raise KeystoreError(f"{manifest} is not a readable network manifest") from None
    return None


def unlock_key(
    node: Path, out_path: Path, *, passphrase_file: Path | None = None, owner: str | None = None
) -> str:
    """Write the node key of `node` as the plain hex file Besu reads, mode 0600, atomically;
    return the validator address. Meant for a tmpfs (docs/besu.md, "Node keys")."""
    key_file = find_key_file(node)
    key, address = _read_node_key(key_file, passphrase_file)
    wanted = expected_address(node)
    if wanted is not None and wanted != address:
        raise KeystoreError(f"{key_file} is the key of {address}, but network.json names {wanted} for it")
    uid = gid = None
    if owner is not None:
        try:
            uid_text, _, gid_text = owner.partition(":")
            uid, gid = int(uid_text), int(gid_text or uid_text)
        except ValueError:
            raise NetworkConfigError(f"--owner {owner!r} is not UID[:GID]") from None
    make_dir(out_path.parent)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        write_private(tmp, ("0x" + key.hex()).encode())
        if uid is not None and gid is not None:
            os.chown(tmp, uid, gid)
        os.replace(tmp, out_path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise KeystoreError(f"cannot write {out_path}: {exc.strerror}") from None
    return address

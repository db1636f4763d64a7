"""The node's signer key: an encrypted keystore file, unlocked once at start-up.

Each agency node signs its anchoring transactions (and its intake receipts) with one signer
account registered for its agency in the on-chain AgencyRegistry. The private key lives only
in an Ethereum keystore v3 file (the format geth, Besu's tooling and eth-account share): the
key encrypted under a passphrase stretched with scrypt. The file is created with mode 0600 and
refused when group or others may read it; the passphrase comes from the command line, a file
(a mounted secret) or the `SIJILL_SIGNER_PASSPHRASE` environment variable, in that order.
Neither the passphrase nor the key ever appears in a message or a log line.

Key rotation keeps every old anchor valid, because the registry records for each signer the
block range in which it was valid:

1. the operator creates a new keystore (`create_keystore`) on the node;
2. a council member proposes `AddSigner(agency, new address)` and the council approves it;
   from the block that executes it, the new signer is valid;
3. the node switches to the new key once `signer_is_current` says the registry accepts it
   (until then it keeps signing with the old key, so anchoring never stops);
4. the council removes the old key with `RemoveSigner`, which closes its validity range, and
   the old keystore file is destroyed.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from web3.contract import Contract
from web3.exceptions import ContractLogicError, Web3RPCError

from node.errors import ChainError, NodeError

log = logging.getLogger(__name__)

PASSPHRASE_ENV = "SIJILL_SIGNER_PASSPHRASE"


class KeystoreError(NodeError):
    """The signer keystore cannot be created or unlocked. Never carries the passphrase or key."""


def create_keystore(
    path: Path,
    passphrase: str,
    private_key: bytes | None = None,
    *,
    kdf_iterations: int | None = None,
) -> str:
    """Encrypt `private_key` (a new random key if None) into a keystore v3 file at `path`.

    The file is created with mode 0600 in one step (never readable by others, even briefly)
    and an existing file is never overwritten. `kdf_iterations` is scrypt's work factor `n`
    (a power of two; default eth-keyfile's 262144): tests lower it, production should not.
    Returns the account's checksum address.
    """
    if not passphrase:
        raise KeystoreError("refusing to create a keystore with an empty passphrase")
    key = private_key if private_key is not None else bytes(Account.create().key)
    try:
        keystore = Account.encrypt(key, passphrase, kdf="scrypt", iterations=kdf_iterations)
    except (ValueError, TypeError) as exc:
        # eth-keyfile's messages name parameters, not the secret; keep only the kind of error.
        raise KeystoreError(
            f"cannot encrypt the key: {type(exc).__name__} (bad key or kdf_iterations)"
        ) from None
    data = json.dumps(keystore).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeystoreError(f"{path} already exists; refusing to overwrite a keystore") from None
    except OSError as exc:
        raise KeystoreError(f"cannot create {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise KeystoreError(f"cannot write {path}: {exc.strerror}") from None
    address = to_checksum_address("0x" + str(keystore["address"]))
    log.info("created signer keystore %s for %s", path, address)
    return address


def load_signer(
    path: Path,
    *,
    passphrase: str | None = None,
    passphrase_file: Path | None = None,
    passphrase_env: str = PASSPHRASE_ENV,
) -> LocalAccount:
    """Unlock the keystore at `path`; the passphrase is the argument, else the file, else the env.

    `KeystoreError` when the file is missing, readable by group or others, not a keystore, or
    when no passphrase is given or it does not unlock the key.
    """
    _check_private(path)
    secret = _passphrase(passphrase, passphrase_file, passphrase_env)
    try:
        keystore: dict[str, Any] = json.loads(path.read_bytes())
    except OSError as exc:
        raise KeystoreError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise KeystoreError(f"{path} is not a keystore (not JSON)") from None
    if not isinstance(keystore, dict) or keystore.get("version") != 3:
        raise KeystoreError(f"{path} is not an Ethereum keystore v3 file")
    try:
        key = Account.decrypt(keystore, secret)
    except Exception:  # MAC mismatch, missing fields, bad kdf params: all "cannot unlock"
        raise KeystoreError(f"cannot unlock {path}: wrong passphrase or damaged keystore") from None
    account: LocalAccount = Account.from_key(key)
    recorded = keystore.get("address")
    if recorded and to_checksum_address("0x" + str(recorded).removeprefix("0x")) != account.address:
        raise KeystoreError(f"cannot unlock {path}: wrong passphrase or damaged keystore")
    return account


def _check_private(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise KeystoreError(f"no keystore at {path}") from None
    except OSError as exc:
        raise KeystoreError(f"cannot read {path}: {exc.strerror}") from None
    if os.name == "posix" and mode & 0o077:
        # Raised, not also logged: the command prints it once, as its one line of error.
        raise KeystoreError(
            f"keystore {path} has mode {mode:04o}, so group or others may read it; "
            f"refusing to use it: run `chmod 600 {path}`"
        )


def _passphrase(given: str | None, file: Path | None, env: str) -> str:
    if given is not None:
        return given
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise KeystoreError(f"cannot read passphrase file {file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise KeystoreError(f"passphrase file {file} is not UTF-8 text") from None
        # Editors and `echo` add one newline; anything else is part of the passphrase.
        for newline in ("\r\n", "\n"):
            if text.endswith(newline):
                return text[: -len(newline)]
        return text
    from_env = os.environ.get(env)
    if from_env is not None:
        return from_env
    raise KeystoreError(f"no passphrase: set {env} or give --passphrase-file")


def signer_is_current(registry: Contract, agency: bytes, address: str) -> bool:
    """Whether the registry lets `address` sign for `agency` (a bytes32 code) now, at `latest`.

    True when the account is a current (not retired) signer of this agency and the agency is
    active; a registry revert (unknown or retired signer, suspended agency) means False.
    """
    try:
        current: bytes = registry.functions.authorizeSigner(to_checksum_address(address)).call(
            block_identifier="latest"
        )
    except ContractLogicError:
        return False
    except (requests.RequestException, Web3RPCError) as exc:
        raise ChainError(f"cannot ask the registry about signer {address}: {type(exc).__name__}") from exc
    return bytes(current) == bytes(agency)

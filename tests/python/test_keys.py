"""The signer keystore: created private (0600), unlocked only with the right passphrase, from
the argument, a file or the environment, and never quoting the passphrase or the key."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.codes import agency_code
from node.keys import PASSPHRASE_ENV, KeystoreError, create_keystore, load_signer, signer_is_current

# A light scrypt work factor: real keystores use eth-keyfile's default (2**18).
LIGHT = 2**10
PASSPHRASE = "qalam-sirri-2024 ✓ كلمة"


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def keystore(tmp_path: Path, key: bytes) -> Path:
    path = tmp_path / "signer.json"
    create_keystore(path, PASSPHRASE, key, kdf_iterations=LIGHT)
    return path


@pytest.fixture(autouse=True)
def no_env_passphrase(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    yield


def test_created_keystore_is_0600_and_unlocks_to_the_same_key(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "signer.json"
    old_umask = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        address = create_keystore(path, PASSPHRASE, key, kdf_iterations=LIGHT)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    signer = load_signer(path, passphrase=PASSPHRASE)
    assert signer.address == address == Account.from_key(key).address
    assert bytes(signer.key) == key


def test_new_random_key_when_none_given(tmp_path: Path) -> None:
    a = create_keystore(tmp_path / "a.json", PASSPHRASE, kdf_iterations=LIGHT)
    b = create_keystore(tmp_path / "b.json", PASSPHRASE, kdf_iterations=LIGHT)
    assert a != b
    assert load_signer(tmp_path / "a.json", passphrase=PASSPHRASE).address == a


def test_refuses_to_overwrite(keystore: Path) -> None:
    before = keystore.read_bytes()
    with pytest.raises(KeystoreError, match="already exists"):
        create_keystore(keystore, "another", kdf_iterations=LIGHT)
    assert keystore.read_bytes() == before


def test_refuses_an_empty_passphrase(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="empty passphrase"):
        create_keystore(tmp_path / "k.json", "", kdf_iterations=LIGHT)
    assert not (tmp_path / "k.json").exists()


def test_wrong_passphrase(keystore: Path) -> None:
    with pytest.raises(KeystoreError) as caught:
        load_signer(keystore, passphrase="not-it")
    assert str(caught.value) == f"cannot unlock {keystore}: wrong passphrase or damaged keystore"


def test_damaged_keystore(keystore: Path, tmp_path: Path) -> None:
    text = keystore.read_text()
    keystore.write_text(text.replace('"mac": "', '"mac": "00'))
    with pytest.raises(KeystoreError, match="wrong passphrase or damaged keystore"):
        load_signer(keystore, passphrase=PASSPHRASE)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    garbage.chmod(0o600)
    with pytest.raises(KeystoreError, match="not a keystore"):
        load_signer(garbage, passphrase=PASSPHRASE)
    with pytest.raises(KeystoreError, match="no keystore at"):
        load_signer(tmp_path / "missing.json", passphrase=PASSPHRASE)


def test_passphrase_from_file_then_env(
    keystore: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = load_signer(keystore, passphrase=PASSPHRASE).address
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")  # as `echo` writes it: one newline is stripped
    assert load_signer(keystore, passphrase_file=secret).address == expected
    secret.write_text(PASSPHRASE + "\r\n")
    assert load_signer(keystore, passphrase_file=secret).address == expected
    secret.write_text(PASSPHRASE + "\n\n")  # only one newline is stripped
    with pytest.raises(KeystoreError, match="cannot unlock"):
        load_signer(keystore, passphrase_file=secret)

    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    assert load_signer(keystore).address == expected
    monkeypatch.setenv("OTHER_PASSPHRASE_VAR", PASSPHRASE)
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    assert load_signer(keystore, passphrase_env="OTHER_PASSPHRASE_VAR").address == expected

    # Precedence: argument, then file, then environment.
    secret.write_text(PASSPHRASE)
    assert load_signer(keystore, passphrase_file=secret).address == expected
    with pytest.raises(KeystoreError, match="cannot unlock"):
        load_signer(keystore, passphrase="wrong", passphrase_file=secret)

    with pytest.raises(KeystoreError, match="cannot read passphrase file"):
        load_signer(keystore, passphrase_file=tmp_path / "nope")


def test_no_passphrase(keystore: Path) -> None:
    with pytest.raises(KeystoreError) as caught:
        load_signer(keystore)
    assert str(caught.value) == f"no passphrase: set {PASSPHRASE_ENV} or give --passphrase-file"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604], ids=lambda m: f"{m:04o}")
def test_refuses_a_keystore_others_may_read(keystore: Path, mode: int) -> None:
    keystore.chmod(mode)
    with pytest.raises(KeystoreError) as caught:
        load_signer(keystore, passphrase=PASSPHRASE)
    assert f"mode {mode:04o}" in str(caught.value)
    assert f"chmod 600 {keystore}" in str(caught.value)


def test_no_message_or_log_quotes_the_passphrase_or_key(
    keystore: Path, key: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_file = tmp_path / "passphrase"
    secret_file.write_text("wrong-" + PASSPHRASE)
    messages = []
    attempts: list[dict[str, Any]] = [
        {"passphrase": "wrong-" + PASSPHRASE},
        {"passphrase_file": secret_file},
        {"passphrase": key.hex()},
    ]
    for kwargs in attempts:
        with pytest.raises(KeystoreError) as caught:
            load_signer(keystore, **kwargs)
        messages.append(str(caught.value))
    keystore.chmod(0o644)
    with pytest.raises(KeystoreError) as caught:
        load_signer(keystore, passphrase=PASSPHRASE)
    messages.append(str(caught.value))
    with pytest.raises(KeystoreError) as caught:
        create_keystore(keystore, PASSPHRASE, key, kdf_iterations=LIGHT)
    messages.append(str(caught.value))
    with pytest.raises(KeystoreError) as caught:
        create_keystore(tmp_path / "bad.json", PASSPHRASE, key, kdf_iterations=3)  # not a power of 2
    messages.append(str(caught.value))
    create_keystore(tmp_path / "logged.json", PASSPHRASE, key, kdf_iterations=LIGHT)

    everything = "\n".join(messages) + "\n" + caplog.text
    for secret in (PASSPHRASE, key.hex(), "0x" + key.hex()):
        assert secret not in everything
    assert "cannot unlock" in everything and "chmod 600" in everything


@pytest.mark.chain
def test_signer_is_current(contracts: dict[str, Any], accounts: list[LocalAccount]) -> None:
    registry = contracts["AgencyRegistry"]
    repd_signer = accounts[1].address
    assert signer_is_current(registry, agency_code("REPD"), repd_signer)
    assert not signer_is_current(registry, agency_code("CSO"), repd_signer)  # another agency's
    assert not signer_is_current(registry, agency_code("REPD"), Account.create().address)  # NotASigner

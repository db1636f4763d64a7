"""`sijill officer add|list|revoke`, run as the real command against a real node store: tokens
printed once and stored hashed, expiry, revocation, refusals (exit 2, one line, no traceback),
the store held by another process, and the audit trail."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from node.store import Store, hash_token, verify_audit_chain

KEK = secrets.token_hex(32)
SIJILL = str(Path(sys.executable).with_name("sijill"))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIJILL_")}
    return {**env, **extra}


def _sijill(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SIJILL, *args],
        env=env if env is not None else _env(SIJILL_KEK=KEK),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _add(data_dir: Path, *args: str, role: str = "officer", name: str = "منى عادل") -> dict[str, Any]:
    done = _sijill(
        "officer",
        "add",
        "--data-dir",
        str(data_dir),
        "--agency",
        "REPD",
        "--role",
        role,
        "--name",
        name,
        "--json",
        *args,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _refused(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    """A node directory as `sijill node init` leaves it, as far as tokens are concerned."""
    data_dir = tmp_path / "repd"
    data_dir.mkdir()
    Store(data_dir / "store", bytes.fromhex(KEK), create=True).close()
    (data_dir / "node.json").write_text(json.dumps({"agency": "REPD", "signer": "0x" + "11" * 20}))
    return data_dir


def _store(node_dir: Path) -> Store:
    return Store(node_dir / "store", bytes.fromhex(KEK))


def test_add_prints_the_token_once_and_stores_its_hash(node_dir: Path) -> None:
    before = int(time.time())
    issued = _add(node_dir, role="supervisor")
    assert set(issued) == {"token", "tokenId", "role", "agency", "name", "expiresAt"}
    assert issued["tokenId"] == hash_token(issued["token"])[:16] and len(issued["token"]) >= 43
    assert (issued["role"], issued["agency"], issued["name"], issued["expiresAt"]) == (
        "supervisor",
        "REPD",
        "منى عادل",
        None,
    )
    with _store(node_dir) as store:
        officer = store.find_token(issued["token"], now=int(time.time()))
        assert officer is not None
        assert {k: officer[k] for k in ("name", "role", "agency")} == {
            "name": "منى عادل",
            "role": "supervisor",
            "agency": "REPD",
        }
        assert before <= officer["createdAt"] <= int(time.time())
        assert all(issued["token"].encode() not in k + v for k, v in store.iter_prefix(b"token/"))
        assert all(issued["token"].encode() not in v for _, v in store.iter_prefix(b"audit/"))

    text = _sijill(
        "officer",
        "add",
        "--data-dir",
        str(node_dir),
        "--agency",
        "REPD",
        "--role",
        "auditor",
        "--name",
        "Ali",
    )
    assert text.returncode == 0, text.stderr
    tokens = [line for line in text.stdout.splitlines() if len(line) == 43 and " " not in line]
    assert len(tokens) == 1 and text.stdout.count(tokens[0]) == 1
    with _store(node_dir) as store:
        found = store.find_token(tokens[0], now=int(time.time()))
        assert found is not None and found["role"] == "auditor"


def test_expiry(node_dir: Path) -> None:
    now = int(time.time())
    issued = _add(node_dir, "--expires-days", "2")
    assert now + 2 * 86_400 <= issued["expiresAt"] <= int(time.time()) + 2 * 86_400
    with _store(node_dir) as store:
        assert store.find_token(issued["token"], now=issued["expiresAt"] - 1) is not None
        assert store.find_token(issued["token"], now=issued["expiresAt"]) is None
    listed = _sijill("officer", "list", "--data-dir", str(node_dir), "--json")
    assert json.loads(listed.stdout)[0]["expiresAt"] == issued["expiresAt"]
    refused = _sijill(
        "officer",
        "add",
        "--data-dir",
        str(node_dir),
        "--agency",
        "REPD",
        "--role",
        "officer",
        "--name",
        "x",
        "--expires-days",
        "0",
    )
    _refused(refused, "--expires-days must be 1 or more")


def test_list_shows_ids_never_tokens(node_dir: Path) -> None:
    issued = [_add(node_dir, role=role, name=f"officer {role}") for role in ("officer", "auditor")]
    as_json = _sijill("officer", "list", "--data-dir", str(node_dir), "--json")
    as_text = _sijill("officer", "list", "--data-dir", str(node_dir))
    assert as_json.returncode == as_text.returncode == 0
    rows = {row["tokenId"]: row for row in json.loads(as_json.stdout)}
    for item in issued:
        assert item["token"] not in as_json.stdout and item["token"] not in as_text.stdout
        assert item["tokenId"] in as_text.stdout
        row = rows[item["tokenId"]]
        assert (row["name"], row["role"], row["agency"], row["revoked"]) == (
            item["name"],
            item["role"],
            "REPD",
            False,
        )
    assert "never" in as_text.stdout


def test_revoke(node_dir: Path) -> None:
    issued = _add(node_dir)
    kept = _add(node_dir, role="auditor")
    done = _sijill("officer", "revoke", issued["tokenId"][:10], "--data-dir", str(node_dir))
    assert done.returncode == 0, done.stderr
    assert f"Token {issued['tokenId']}" in done.stdout and "is now revoked" in done.stdout
    with _store(node_dir) as store:
        assert store.find_token(issued["token"], now=int(time.time())) is None
        assert store.find_token(kept["token"], now=int(time.time())) is not None
    rows = {
        r["tokenId"]: r
        for r in json.loads(_sijill("officer", "list", "--data-dir", str(node_dir), "--json").stdout)
    }
    assert rows[issued["tokenId"]]["revoked"] is True and rows[kept["tokenId"]]["revoked"] is False
    again = _sijill("officer", "revoke", issued["tokenId"], "--data-dir", str(node_dir))
    assert again.returncode == 0 and "already revoked" in again.stdout
    _refused(_sijill("officer", "revoke", "0000000000", "--data-dir", str(node_dir)), "no token match")
    _refused(_sijill("officer", "revoke", "xyz", "--data-dir", str(node_dir)), "is not a token hash")


def test_refusals(node_dir: Path, tmp_path: Path) -> None:
    def add(agency: str, role: str, data_dir: Path = node_dir) -> subprocess.CompletedProcess[str]:
        args = ("--data-dir", str(data_dir), "--agency", agency, "--role", role, "--name", "x")
        return _sijill("officer", "add", *args)

    _refused(add("REPD", "boss"), "role 'boss' is not one of officer, supervisor, auditor")
    _refused(add("CSO", "officer"), "is REPD's, not CSO's")
    _refused(add("repd", "officer"), "agency code")
    _refused(add("REPD", "officer", tmp_path / "nowhere"), "sijill node init")
    _refused(_sijill("officer", "list", "--data-dir", str(node_dir), env=_env()), "SIJILL_KEK")
    _refused(
        _sijill("officer", "list", "--data-dir", str(node_dir), env=_env(SIJILL_KEK=secrets.token_hex(32))),
        "key-encryption key does not match",
    )
    with _store(node_dir) as store:
        assert store.list_tokens() == []


def test_store_in_use_by_another_process(node_dir: Path) -> None:
    issued = _add(node_dir)
    message = "store in {} is in use (is `sijill serve` running for this directory?); stop it first"
    with _store(node_dir):
        for args in (
            ("add", "--agency", "REPD", "--role", "officer", "--name", "x"),
            ("list",),
            ("revoke", issued["tokenId"]),
        ):
            _refused(_sijill("officer", *args, "--data-dir", str(node_dir)), message.format(node_dir))
    with _store(node_dir) as store:
        assert len(store.list_tokens()) == 1 and not store.list_tokens()[0]["revoked"]


def test_audit_entries_name_the_token_by_id_only(node_dir: Path) -> None:
    issued = _add(node_dir, "--expires-days", "30", role="supervisor")
    assert _sijill("officer", "revoke", issued["tokenId"], "--data-dir", str(node_dir)).returncode == 0
    with _store(node_dir) as store:
        entries = list(store.export_audit())
        assert verify_audit_chain(entries, head=store.audit_head()[1]) == 2
    added, revoked = entries
    assert added["actor"] == revoked["actor"] == "cli:officer"
    assert (added["action"], revoked["action"]) == ("officer.add", "officer.revoke")
    assert added["subject"] == revoked["subject"] == issued["tokenId"]
    assert added["details"] == {
        "role": "supervisor",
        "name": "منى عادل",
        "agency": "REPD",
        "expiresAt": issued["expiresAt"],
    }
    assert revoked["details"] == {"role": "supervisor", "name": "منى عادل"}
    assert added["requestId"] != revoked["requestId"]
    assert issued["token"] not in json.dumps(entries) and hash_token(issued["token"]) not in json.dumps(
        entries
    )


def test_kek_from_the_dev_node_or_a_file(tmp_path: Path) -> None:
    """A dev node (`node init --dev-account`) needs no KEK in the environment; --kek-file wins."""
    data_dir = tmp_path / "cso"
    init = _sijill(
        "node", "init", "--data-dir", str(data_dir), "--agency", "CSO", "--dev-account", "2", env=_env()
    )
    assert init.returncode == 0, init.stderr
    done = _sijill(
        "officer",
        "add",
        "--data-dir",
        str(data_dir),
        "--agency",
        "CSO",
        "--role",
        "officer",
        "--name",
        "x",
        "--json",
        env=_env(),
    )
    assert done.returncode == 0, done.stderr
    kek = (data_dir / "dev-kek").read_text()
    with Store(data_dir / "store", bytes.fromhex(kek)) as store:
        assert store.find_token(json.loads(done.stdout)["token"], now=int(time.time())) is not None
    kek_file = tmp_path / "kek"
    kek_file.write_text(kek)
    wrong = _env(SIJILL_KEK=secrets.token_hex(32))
    assert _sijill("officer", "list", "--data-dir", str(data_dir), env=wrong).returncode == 2
    listed = _sijill("officer", "list", "--data-dir", str(data_dir), "--kek-file", str(kek_file), env=wrong)
    assert listed.returncode == 0 and json.loads(done.stdout)["tokenId"] in listed.stdout


def test_a_running_node_answers_over_its_admin_socket_with_the_same_output(node_dir: Path) -> None:
    """While a process holds the store and serves the admin socket (as `sijill serve` does), the
    commands go through it, need no KEK, print what they print on a stopped node, and audit the
    same; a socket file left behind by a killed node is replaced or ignored."""
    from node.admin import AdminServer, admin_socket_path
    from node.admin_actions import store_actions

    stopped = _add(node_dir, role="supervisor", name="first")
    listed_stopped = json.loads(_sijill("officer", "list", "--data-dir", str(node_dir), "--json").stdout)
    socket = admin_socket_path(node_dir)
    no_kek = _env()
    with _store(node_dir) as store:
        server = AdminServer(socket, store_actions(store, agency="REPD", chain_head=lambda: None))
        try:
            assert oct(socket.stat().st_mode & 0o777) == "0o600"
            running = json.loads(
                _sijill(
                    "officer", "add", "--data-dir", str(node_dir), "--agency", "REPD",
                    "--role", "officer", "--name", "second", "--json", env=no_kek,
                ).stdout
            )  # fmt: skip
            assert running.keys() == stopped.keys() and running["name"] == "second"
            listed = json.loads(
                _sijill("officer", "list", "--data-dir", str(node_dir), "--json", env=no_kek).stdout
            )
            assert {row["tokenId"] for row in listed} == {stopped["tokenId"], running["tokenId"]}
            assert [row for row in listed if row["tokenId"] == stopped["tokenId"]] == listed_stopped
            done = _sijill("officer", "revoke", running["tokenId"], "--data-dir", str(node_dir), env=no_kek)
            assert done.returncode == 0 and "is now revoked" in done.stdout, done.stderr
            _refused(
                _sijill("officer", "revoke", "00000000", "--data-dir", str(node_dir), env=no_kek),
                "no token match 00000000",
            )
            assert not store.find_token(running["token"], now=int(time.time()))
        finally:
            server.close()
    assert not socket.exists()
    with _store(node_dir) as store:
        actions = [(e["actor"], e["action"], e["subject"]) for e in store.export_audit()]
    assert actions == [
        ("cli:officer", "officer.add", stopped["tokenId"]),
        ("cli:officer", "officer.add", running["tokenId"]),
        ("cli:officer", "officer.revoke", running["tokenId"]),
    ]
    # A socket file with no node behind it: the command opens the store itself.
    import socket as sockets

    left = sockets.socket(sockets.AF_UNIX)
    left.bind(str(socket))
    left.close()
    assert _sijill("officer", "list", "--data-dir", str(node_dir), "--json").returncode == 0
    with _store(node_dir) as store:
        AdminServer(socket, store_actions(store, agency="REPD", chain_head=lambda: None)).close()

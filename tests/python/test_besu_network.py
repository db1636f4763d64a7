"""`sijill network init` / `unlock-key` (node/network/generate.py and the modules it uses): the
Besu QBFT network's files.

Besu cannot run here, so the tests check what can be checked without it:
- the QBFT extraData codec against Besu's own bytes (published vectors, cited below), both ways;
- every generated file parses, and every cross-reference resolves (keys, addresses, enodes,
  extraData, allow-lists, configs, compose services) for 4 and for 30 validators;
- the refusals exit non-zero with one clear line and no traceback (the real CLI, as a process);
- the genesis on a real chain: anvil started from it with `--init`, and `sijill deploy` on it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli.main import app
from node.chain.limits import MAX_LEAVES_PER_CALL
from node.chain.toolchain import PROJECT_ROOT
from node.keys import KeystoreError
from node.network import nodekeys
from node.network.extradata import QbftExtraData, decode_qbft_extra_data, encode_qbft_extra_data
from node.network.generate import generate_network
from node.network.nodekeys import NodeKey, unlock_key
from node.network.options import (
    BESU_KEY,
    DEFAULT_GAS_LIMIT,
    LARGEST_CALL_GAS,
    MIN_GAS_LIMIT,
    PASSPHRASE_ENV,
    NetworkConfigError,
    NetworkOptions,
)

runner = CliRunner()
PASSPHRASE = "correct horse battery staple"

# ----------------------------------------------------------------- Besu's own extraData bytes

#: `besu rlp encode --from=toEncode.json --type=QBFT_EXTRA_DATA` in Besu's QBFT guide: the input
#: validators and the output extraData, both printed there. hyperledger/besu-docs,
#: docs/private-networks/how-to/configure/consensus/qbft.md (commit 110d7680c87c34864ca2a80df0f210e2bde934b7),
#: "Generate extra data"; https://besu.hyperledger.org/private-networks/how-to/configure/consensus/qbft
BESU_RLP_ENCODE_VALIDATORS = [
    "0x4592c8e45706cc08b8f44b11e43cba0cfc5892cb",
    "0x06e23768a0f59cf365e18c2e0c89e151bcdedc70",
    "0xc5327f96ee02d7bcbc1bf1236b8c15148971e1de",
    "0xab5e7f4061c605820d3744227eed91ff8e2c8908",
]
BESU_RLP_ENCODE_OUTPUT = (
    "0xf87aa00000000000000000000000000000000000000000000000000000000000000000f854944592c8e45706cc08"
    "b8f44b11e43cba0cfc5892cb9406e23768a0f59cf365e18c2e0c89e151bcdedc7094c5327f96ee02d7bcbc1bf1236b"
    "8c15148971e1de94ab5e7f4061c605820d3744227eed91ff8e2c8908c080c0"
)

#: Besu's codec unit test, whose `encodingMatchesKnownRawHexString` asserts that Besu encodes
#: this extraData to exactly these bytes: vanity 0x01..0x20, validators 0x..01 and 0x..02, an
#: "add" vote for 0x..01, round 0xFEDCBA and two seals (r=1, s=10, v=0) and (r=10, s=1, v=0).
#: hyperledger/besu, consensus/qbft/src/test/java/org/hyperledger/besu/consensus/qbft/
#: QbftExtraDataCodecTest.java (commit 0412fd797ece9828471214ddd11c80268753eeac), RAW_HEX_ENCODING_STRING.
BESU_CODEC_TEST_HEX = (
    "0xf8f0a00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20ea940000000000000000"
    "000000000000000000000001940000000000000000000000000000000000000002d7940000000000000000"
    "00000000000000000000000181ff83fedcbaf886b841000000000000000000000000000000000000000000"
    "0000000000000000000001000000000000000000000000000000000000000000000000000000000000000a"
    "00b841000000000000000000000000000000000000000000000000000000000000000a0000000000000000"
    "00000000000000000000000000000000000000000000000100"
)

#: The QBFT genesis of the Quorum Developer Quickstart (the Besu network Consensys ships),
#: Consensys/quorum-dev-quickstart, files/besu/config/besu/QBFTgenesis.json
#: (commit 06d1a8241eb2069b2ece7a391e9fc7046a780dac).
QUICKSTART_EXTRA_DATA = (
    "0xf87aa00000000000000000000000000000000000000000000000000000000000000000f8549493917cadbace5d"
    "fce132b991732c6cda9bcc5b8a9427a97c9aaf04f18f3014c32e036dd0ac76da5f1894ce412f988377e31f4d0ff12d"
    "74df73b51c42d0ca9498c1334496614aed49d2e81526d089f7264fed9cc080c0"
)

#: Every key the generated config.toml may use: Besu rejects a config file with an unknown option.
#: Each is an option of Besu's CLI reference (hyperledger/besu-docs,
#: docs/public-networks/reference/cli/options.md and docs/private-networks/reference/cli/options.md).
BESU_OPTIONS = {
    "identity",
    "data-path",
    "genesis-file",
    "node-private-key-file",
    "p2p-host",
    "p2p-interface",
    "p2p-port",
    "nat-method",
    "max-peers",
    "bootnodes",
    "rpc-http-enabled",
    "rpc-http-host",
    "rpc-http-port",
    "rpc-http-api",
    "host-allowlist",
    "rpc-http-max-batch-size",
    "rpc-max-logs-range",
    "revert-reason-enabled",
    "min-gas-price",
    "tx-pool-min-gas-price",
    "tx-pool",
    "tx-pool-max-future-by-sender",
    "permissions-nodes-config-file-enabled",
    "permissions-nodes-config-file",
    "permissions-accounts-config-file-enabled",
    "permissions-accounts-config-file",
}


def test_encoding_matches_besu_rlp_encode_byte_for_byte() -> None:
    assert "0x" + encode_qbft_extra_data(BESU_RLP_ENCODE_VALIDATORS).hex() == BESU_RLP_ENCODE_OUTPUT
    decoded = decode_qbft_extra_data(BESU_RLP_ENCODE_OUTPUT)
    assert [v.lower() for v in decoded.validators] == BESU_RLP_ENCODE_VALIDATORS
    assert (decoded.vanity, decoded.vote, decoded.round, decoded.seals) == (bytes(32), None, 0, ())


def test_besu_codec_vector_decodes_to_its_fields_and_reencodes_byte_for_byte() -> None:
    decoded = decode_qbft_extra_data(BESU_CODEC_TEST_HEX)
    one, two = "0x" + "00" * 19 + "01", "0x" + "00" * 19 + "02"

    def seal(r: int, s: int, v: int) -> bytes:
        return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])

    assert decoded == QbftExtraData(
        vanity=bytes(range(1, 33)),
        validators=(one, two),
        vote=(one, True),
        round=0xFEDCBA,
        seals=(seal(1, 10, 0), seal(10, 1, 0)),
    )
    again = encode_qbft_extra_data(
        decoded.validators,
        decoded.vanity,
        vote=decoded.vote,
        round_number=decoded.round,
        seals=decoded.seals,
    )
    assert "0x" + again.hex() == BESU_CODEC_TEST_HEX


def test_quickstart_genesis_extra_data_reencodes_byte_for_byte() -> None:
    decoded = decode_qbft_extra_data(QUICKSTART_EXTRA_DATA)
    assert len(decoded.validators) == 4
    assert "0x" + encode_qbft_extra_data(decoded.validators).hex() == QUICKSTART_EXTRA_DATA


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=20, max_size=20), min_size=1, max_size=30, unique=True))
def test_extra_data_round_trip(raw: list[bytes]) -> None:
    validators = ["0x" + a.hex() for a in raw]
    data = encode_qbft_extra_data(validators)
    decoded = decode_qbft_extra_data(data)
    assert [v.lower() for v in decoded.validators] == [v.lower() for v in validators]
    assert encode_qbft_extra_data(decoded.validators) == data


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "empty"),
        (encode_qbft_extra_data(BESU_RLP_ENCODE_VALIDATORS) + b"\0", "canonical"),  # trailing byte
        # Round as 3 bytes with a leading zero: Besu's readIntScalar refuses it
        # (QbftExtraDataCodecTest.incorrectlyEncodedRoundThrowsRlpException).
        (bytes.fromhex("e8a0" + "00" * 32 + "c0c08300dcbac0"), "leading zeros"),
        (bytes.fromhex("c5" + "81ff" + "c0c080"), "5 items"),
        (bytes.fromhex("e4" + "9f" + "00" * 31 + "c0c080c0"), "vanity"),
    ],
)
def test_decode_refuses_what_besu_refuses(data: bytes, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        decode_qbft_extra_data(data)


# ------------------------------------------------------------------------------- networks


@pytest.fixture(scope="module")
def signers() -> list[LocalAccount]:
    return [Account.create() for _ in range(4)]


@pytest.fixture(scope="module")
def agencies_file(tmp_path_factory: pytest.TempPathFactory, signers: list[LocalAccount]) -> Path:
    path = tmp_path_factory.mktemp("agencies") / "agencies.json"
    agencies = [
        {
            "code": "REPD",
            "name": "Real Estate Publicity Department",
            "signers": [signers[0].address],
            "recordTypes": ["title"],
        },
        {
            "code": "CSO",
            "name": "قطاع الأحوال المدنية / Civil Status Organization",
            "signers": [signers[1].address, signers[2].address],
            "recordTypes": ["marriage"],
        },
        {
            "code": "CRA",
            "name": "Commercial Registry Authority",
            "signers": [signers[3].address],
            "recordTypes": ["commercial"],
            "council": False,
        },
    ]
    path.write_text(json.dumps({"threshold": 2, "proposalLifetime": 604800, "agencies": agencies}))
    return path


@pytest.fixture(scope="module")
def network4(tmp_path_factory: pytest.TempPathFactory, agencies_file: Path) -> Path:
    """Four validators with encrypted keys, made by the CLI (passphrase from the environment).
    scrypt's work factor is lowered for speed (a second per key otherwise); it is None, i.e.
    eth-keyfile's 262144, everywhere else (test_the_keys_are_encrypted_with_the_default_work)."""
    out = tmp_path_factory.mktemp("net4") / "network"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nodekeys, "KEYSTORE_KDF_ITERATIONS", 2**12)
        result = runner.invoke(
            app,
            ["network", "init", "--validators", "4", "--agencies", str(agencies_file), "--out", str(out)],
            env={PASSPHRASE_ENV: PASSPHRASE},
        )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def network30(tmp_path_factory: pytest.TempPathFactory, agencies_file: Path) -> Path:
    out = tmp_path_factory.mktemp("net30") / "network"
    extra = Account.create().address
    generate_network(
        out, NetworkOptions(validators=30), agencies_file, passphrase=None, allow_accounts=[extra]
    )
    return out


def _load(out: Path) -> dict[str, Any]:
    """Every generated file, parsed as Besu / Compose / Sijill will parse it."""
    manifest = json.loads((out / "network.json").read_text())
    return {
        "manifest": manifest,
        "genesis": json.loads((out / "genesis.json").read_text()),
        "agencies": json.loads((out / "agencies.json").read_text()),
        "compose": yaml.safe_load((out / "docker-compose.yml").read_text()),
        "configs": {
            v["name"]: tomllib.loads((out / v["configFile"]).read_text()) for v in manifest["validators"]
        },
        "permissions": {
            v["name"]: tomllib.loads((out / v["permissionsFile"]).read_text()) for v in manifest["validators"]
        },
    }


def _key_of(out: Path, entry: dict[str, Any]) -> bytes:
    path = out / entry["keyFile"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    text = path.read_text()
    if path.name == "key.json":
        return bytes(Account.decrypt(json.loads(text), PASSPHRASE))
    assert text.startswith("0x") and len(text) == 66, "Besu's key file: 0x and 64 hex digits"
    return bytes.fromhex(text[2:])


def _check_network(out: Path, count: int, agencies_file: Path) -> dict[str, Any]:
    files = _load(out)
    manifest, genesis, compose = files["manifest"], files["genesis"], files["compose"]
    validators = manifest["validators"]
    assert [v["index"] for v in validators] == list(range(1, count + 1))
    assert manifest["consensus"]["validators"] == count
    assert manifest["consensus"]["faultTolerance"] == (count - 1) // 3

    # Keys -> addresses -> enodes (and key.pub).
    for v in validators:
        key = NodeKey(_key_of(out, v))
        assert key.address == v["address"]
        assert "0x" + key.public_key.hex() == v["publicKey"]
        assert (out / v["name"] / "key.pub").read_text().strip() == v["publicKey"]
        assert v["enode"] == f"enode://{key.public_key.hex()}@{v['host']}:{v['p2pPort']}"
    addresses = [v["address"] for v in validators]
    enodes = [v["enode"] for v in validators]
    assert len(set(addresses)) == count and len(set(enodes)) == count

    # Genesis: extraData names exactly the validators (ascending), milestones, free gas, gas limit.
    extra = decode_qbft_extra_data(genesis["extraData"])
    assert list(extra.validators) == sorted(addresses, key=str.lower)
    assert (extra.vanity, extra.vote, extra.round, extra.seals) == (bytes(32), None, 0, ())
    config = genesis["config"]
    assert config["chainId"] == manifest["chainId"]
    assert config["zeroBaseFee"] is True and genesis["baseFeePerGas"] == "0x0"
    assert config["shanghaiTime"] == 0 and "cancunTime" not in config and "pragueTime" not in config
    for fork in (
        "homesteadBlock",
        "eip150Block",
        "eip158Block",
        "byzantiumBlock",
        "constantinopleBlock",
        "petersburgBlock",
        "istanbulBlock",
        "berlinBlock",
        "londonBlock",
    ):
        assert config[fork] == 0, fork
    assert config["qbft"] == {"blockperiodseconds": 2, "epochlength": 30000, "requesttimeoutseconds": 4}
    assert int(genesis["gasLimit"], 16) == manifest["gasLimit"] >= MIN_GAS_LIMIT > LARGEST_CALL_GAS
    assert genesis["alloc"] == {}, "the contracts are deployed by `sijill deploy`, not pre-allocated"

    # Accounts allow-list: every signer of the agencies file, and the deployer.
    file_signers = [s for a in json.loads(agencies_file.read_text())["agencies"] for s in a["signers"]]
    assert files["agencies"] == json.loads(agencies_file.read_text())
    wanted = {a.lower() for a in [*file_signers, manifest["deployer"]["address"]]}
    assert {a.lower() for a in manifest["accountsAllowlist"]} >= wanted

    host_of = {v["name"]: v["host"] for v in validators}
    for v in validators:
        cfg = files["configs"][v["name"]]
        assert set(cfg) <= BESU_OPTIONS, set(cfg) - BESU_OPTIONS
        assert cfg["rpc-http-host"] == cfg["p2p-host"] == v["host"] != "0.0.0.0"
        assert "0.0.0.0" not in json.dumps(cfg), "no option listens on every interface"
        assert cfg["min-gas-price"] == 0 and cfg["tx-pool-min-gas-price"] == 0
        assert {"QBFT", "PERM"} <= set(cfg["rpc-http-api"]) and not {"ADMIN", "DEBUG"} & set(
            cfg["rpc-http-api"]
        )
        assert v["host"] in cfg["host-allowlist"]
        assert sorted(cfg["bootnodes"]) == sorted(e for e in enodes if e != v["enode"])
        assert cfg["node-private-key-file"] == BESU_KEY
        assert cfg["tx-pool"] == "layered" and cfg["tx-pool-max-future-by-sender"] >= 200
        assert cfg["max-peers"] >= count - 1
        assert (
            cfg["permissions-nodes-config-file-enabled"] and cfg["permissions-accounts-config-file-enabled"]
        )
        perms = files["permissions"][v["name"]]
        assert perms["nodes-allowlist"] == enodes
        assert set(perms["accounts-allowlist"]) == {a.lower() for a in manifest["accountsAllowlist"]}
        assert all(a == a.lower() for a in perms["accounts-allowlist"]), "Besu keeps the list lower-cased"
        assert cfg["permissions-accounts-config-file"] == cfg["permissions-nodes-config-file"]

    # Compose: one Besu service per validator at its address, its own config, key and data.
    services = compose["services"]
    subnet = ipaddress.ip_network(compose["networks"]["sijill"]["ipam"]["config"][0]["subnet"])
    addresses_used = []
    for v in validators:
        service = services[v["name"]]
        assert service["image"] == manifest["besuImage"] == f"hyperledger/besu:{manifest['besuVersion']}"
        assert service["networks"]["sijill"]["ipv4_address"] == v["host"]
        assert ipaddress.ip_address(v["host"]) in subnet
        # The image sets BESU_RPC_HTTP_HOST=0.0.0.0, which would beat the config file.
        assert service["environment"]["BESU_RPC_HTTP_HOST"] == v["host"]
        assert f"./{v['configFile']}:/config/config.toml:ro" in service["volumes"]
        assert f"./{v['dataDir']}:/var/lib/besu" in service["volumes"]
        init = services[f"init-{v['name']}"]
        assert f"unlock-key /network/{v['name']} --out {BESU_KEY}" in init["command"][0]
        key_volume = f"{v['name']}-key"
        assert (
            f"{key_volume}:/run/besu:ro" in service["volumes"]
            and f"{key_volume}:/run/besu" in init["volumes"]
        )
        assert compose["volumes"][key_volume]["driver_opts"]["type"] == "tmpfs"
        assert service["depends_on"] == {f"init-{v['name']}": {"condition": "service_healthy"}}
        addresses_used.append(v["host"])
    for agency in manifest["agencies"]:
        service = services[agency["service"]]
        own = validators[agency["validator"] - 1]
        assert agency["rpcUrl"] == own["rpcUrl"] == f"http://{own['host']}:{own['rpcPort']}"
        command = service["command"]
        assert command[0] == "serve" and command[command.index("--rpc") + 1] == own["rpcUrl"]
        assert command[command.index("--agency") + 1] == agency["code"]
        assert service["depends_on"] == {own["name"]: {"condition": "service_healthy"}}
        assert service["networks"]["sijill"]["ipv4_address"] == agency["host"]
        assert ipaddress.ip_address(agency["host"]) in subnet
        assert set(service["secrets"]) <= set(compose["secrets"])
        addresses_used.append(agency["host"])
    assert len(set(addresses_used)) == len(addresses_used)
    assert host_of == {
        v["name"]: services[v["name"]]["networks"]["sijill"]["ipv4_address"] for v in validators
    }
    return files


def test_four_validators_every_file_parses_and_cross_references(network4: Path, agencies_file: Path) -> None:
    files = _check_network(network4, 4, agencies_file)
    manifest = files["manifest"]
    assert manifest["keys"] == "encrypted"
    assert all(v["keyFile"].endswith("key.json") for v in manifest["validators"])
    assert files["compose"]["secrets"]["network_passphrase"] == {"environment": PASSPHRASE_ENV}
    deployer = manifest["deployer"]
    assert deployer["keyFile"] == "deployer/key.json"
    assert Account.from_key(_key_of(network4, deployer)).address == deployer["address"]


def test_thirty_validators_every_file_parses_and_cross_references(
    network30: Path, agencies_file: Path
) -> None:
    files = _check_network(network30, 30, agencies_file)
    manifest = files["manifest"]
    assert manifest["consensus"]["faultTolerance"] == 9
    kept = [k["address"] for k in manifest["keep"]]
    assert len(kept) == 1 and kept[0] in manifest["accountsAllowlist"]
    assert "network_passphrase" not in files["compose"]["secrets"]  # plain keys: nothing to unlock


def test_no_long_running_process_of_the_compose_file_runs_as_root(network4: Path, network30: Path) -> None:
    """Every service names its user. Besu's image starts as root and its entrypoint script drops
    to uid 1000; the generated services replace that entrypoint, so they must say 1000 themselves.
    The init containers need root for a chown and the key, then sleep as Besu's user."""
    for out in (network4, network30):
        services = _load(out)["compose"]["services"]
        manifest = _load(out)["manifest"]
        validators = {v["name"] for v in manifest["validators"]}
        agencies = {a["service"] for a in manifest["agencies"]}
        assert set(services) == validators | agencies | {f"init-{name}" for name in validators}
        for name, service in services.items():
            assert "user" in service, f"{name} names no user: it would run as its image's (root for Besu)"
            if name in validators:
                assert service["user"] == "1000:1000", name
                assert service["entrypoint"] == ["/bin/bash", "-c"]
                assert service["command"][0].rstrip().endswith("--config-file=/config/config.toml")
            elif name in agencies:
                assert service["user"] == "${SIJILL_UID:-1000}:${SIJILL_GID:-1000}", name
            else:
                assert service["user"] == "0:0", name
                last = service["command"][0].split(" && ")[-1]
                assert last == "exec setpriv --reuid=1000 --regid=1000 --clear-groups sleep infinity", name


def test_the_keys_are_encrypted_with_the_default_work(network4: Path) -> None:
    assert nodekeys.KEYSTORE_KDF_ITERATIONS is None  # eth-keyfile's scrypt n = 262144
    keystore = json.loads((network4 / "validator-1" / "key.json").read_text())
    assert keystore["version"] == 3 and keystore["crypto"]["kdf"] == "scrypt"


def test_unlock_key_writes_the_plain_key_mode_0600(network4: Path, tmp_path: Path) -> None:
    manifest = json.loads((network4 / "network.json").read_text())
    target = tmp_path / "run" / "besu" / "key"
    result = runner.invoke(
        app,
        ["network", "unlock-key", str(network4 / "validator-2"), "--out", str(target)],
        env={PASSPHRASE_ENV: PASSPHRASE},
    )
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    text = target.read_text()
    assert text.startswith("0x") and len(text) == 66
    assert NodeKey(bytes.fromhex(text[2:])).address == manifest["validators"][1]["address"]
    # Wrong passphrase: refused, nothing written, no secret in the message.
    other = tmp_path / "other"
    result = runner.invoke(
        app,
        ["network", "unlock-key", str(network4 / "validator-1"), "--out", str(other)],
        env={PASSPHRASE_ENV: "nope"},
    )
    assert result.exit_code != 0 and not other.exists()
    assert "wrong passphrase" in str(result.exception)


def test_unlock_key_refuses_a_key_that_is_not_the_manifests(network30: Path, tmp_path: Path) -> None:
    """validator-1's directory holding validator-2's key (a mix-up when copying) is refused."""
    copy = tmp_path / "network"
    (copy / "validator-1").mkdir(parents=True)
    (copy / "network.json").write_bytes((network30 / "network.json").read_bytes())
    (copy / "validator-1" / "key").write_bytes((network30 / "validator-2" / "key").read_bytes())
    (copy / "validator-1" / "key").chmod(0o600)
    with pytest.raises(KeystoreError, match=r"network\.json names"):
        unlock_key(copy / "validator-1", tmp_path / "key")
    assert not (tmp_path / "key").exists()


def test_host_template_puts_validators_on_their_own_machines(agencies_file: Path, tmp_path: Path) -> None:
    options = NetworkOptions(validators=4, host_template="10.8.{i}.10")
    result = generate_network(tmp_path / "net", options, agencies_file, passphrase=None)
    manifest = result.manifest
    assert [v["host"] for v in manifest["validators"]] == [f"10.8.{i}.10" for i in range(1, 5)]
    assert all(v["enode"].endswith(f"@10.8.{v['index']}.10:30303") for v in manifest["validators"])
    assert manifest["composeFile"] is None and not (tmp_path / "net" / "docker-compose.yml").exists()
    with pytest.raises(NetworkConfigError, match="IP address"):
        generate_network(
            tmp_path / "bad", NetworkOptions(host_template="besu-{i}.example"), agencies_file, passphrase=None
        )


def test_force_replaces_a_network_that_never_ran_but_not_chain_data(
    agencies_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "net"
    first = generate_network(out, NetworkOptions(), agencies_file, passphrase=None).manifest
    with pytest.raises(NetworkConfigError, match="not empty"):
        generate_network(out, NetworkOptions(), agencies_file, passphrase=None)
    second = generate_network(out, NetworkOptions(), agencies_file, passphrase=None, force=True).manifest
    assert {v["address"] for v in first["validators"]}.isdisjoint(v["address"] for v in second["validators"])
    (out / "validator-1" / "data" / "DATABASE_METADATA.json").write_text("{}")
    with pytest.raises(NetworkConfigError, match="holds chain data"):
        generate_network(out, NetworkOptions(), agencies_file, passphrase=None, force=True)


def test_agencies_files_deploy_would_reject_are_refused(agencies_file: Path, tmp_path: Path) -> None:
    document = json.loads(agencies_file.read_text())
    repd = document["agencies"][0]
    public = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # anvil's development account 1
    cases = {
        "threshold 5": {**document, "threshold": 5},
        "listed for REPD and CSO": {
            **document,
            "agencies": [repd, {**document["agencies"][1], "signers": repd["signers"]}],
        },
        "public development accounts": {
            **document,
            "threshold": 1,
            "agencies": [{**repd, "signers": [public]}],
        },
        "lists agency REPD twice": {**document, "agencies": [repd, repd]},
        "agency code": {**document, "agencies": [{**repd, "code": "repd"}]},
    }
    for needle, content in cases.items():
        path = tmp_path / "agencies.json"
        path.write_text(json.dumps(content))
        with pytest.raises(NetworkConfigError, match=needle):
            generate_network(tmp_path / "net", NetworkOptions(), path, passphrase=None)
        assert not (tmp_path / "net").exists()


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (NetworkOptions(chain_id=31337), "dev chain"),
        (NetworkOptions(gas_limit=30_000_000), "--gas-limit"),
        (NetworkOptions(block_period=4, request_timeout=4), "--request-timeout"),
        (NetworkOptions(subnet="10.0.0.0/28"), "too small"),
    ],
)
def test_options_that_cannot_work_are_refused(
    options: NetworkOptions, needle: str, agencies_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(NetworkConfigError, match=needle):
        generate_network(tmp_path / "net", options, agencies_file, passphrase=None)
    assert not (tmp_path / "net").exists()


# ---------------------------------------------------------------- refusals, as a real process


def test_refusals_exit_non_zero_with_a_clear_message_and_no_traceback(
    agencies_file: Path, tmp_path: Path
) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "genesis.json").write_text("{}")
    bad_agencies = tmp_path / "bad-agencies.json"
    bad_agencies.write_text(json.dumps({"threshold": 1, "agencies": [{"code": "REPD", "name": "x"}]}))
    cases = {
        "three": (["--validators", "3", "--agencies", str(agencies_file)], "3 validators", 2),
        "thirty-one": (["--validators", "31", "--agencies", str(agencies_file)], "31 validators", 2),
        "used": (["--agencies", str(agencies_file), "--out", str(used)], "is not empty", 1),
        "bad": (["--agencies", str(bad_agencies)], "agencies file", 1),
    }
    env = {**os.environ, PASSPHRASE_ENV: PASSPHRASE, "COLUMNS": "200"}
    processes = {}
    for name, (args, _, _) in cases.items():
        if "--out" not in args:
            args = [*args, "--out", str(tmp_path / name)]
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", "cli", "network", "init", *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=120)
        _, needle, status = cases[name]
        assert process.returncode == status, (name, stdout, stderr)
        assert "Traceback" not in stdout + stderr, (name, stderr)
        assert needle in " ".join((stdout + stderr).split()), (name, stdout, stderr)
        assert not (tmp_path / name).exists() or name == "used"
    assert sorted(p.name for p in used.iterdir()) == ["genesis.json"]


# ------------------------------------------------------------------ the genesis on a chain


@pytest.fixture
def anvil_from_genesis(network4: Path) -> Iterator[str]:
    """anvil started from the generated genesis.json (`--init`). anvil takes the chain id, base
    fee, timestamp and alloc from it but not gasLimit (its own default, 30 M, stays; checked
    below), so the genesis's gas limit is also given as --gas-limit."""
    from node.chain.devchain import DevChain, DevChainConfig, anvil_binary, free_port

    genesis = network4 / "genesis.json"
    gas_limit = int(json.loads(genesis.read_text())["gasLimit"], 16)

    class FromGenesis(DevChainConfig):
        def command(self, binary: Path) -> list[str]:
            return [
                str(binary),
                "--init",
                str(genesis),
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--hardfork",
                "shanghai",
                "--block-time",
                "1",
                "--gas-price",
                "0",
                "--disable-min-priority-fee",
                "--gas-limit",
                str(gas_limit),
            ]

    anvil_binary()  # fails clearly if npm ci was not run
    with DevChain(FromGenesis(port=free_port())) as chain:
        yield chain.rpc_url


@pytest.mark.chain
def test_genesis_runs_on_anvil_and_sijill_deploy_works_on_it(
    network4: Path, anvil_from_genesis: str, signers: list[LocalAccount], tmp_path: Path
) -> None:
    from web3 import Web3

    from node.chain.client import RevertDecoder, connect
    from node.chain.deploy import bound_contracts
    from node.chain.toolchain import compile_contracts
    from node.chain.txmanager import TxManager

    manifest = json.loads((network4 / "network.json").read_text())
    w3: Web3 = connect(anvil_from_genesis)
    assert w3.eth.chain_id == manifest["chainId"]
    latest = w3.eth.get_block("latest")
    assert latest["baseFeePerGas"] == 0
    assert latest["gasLimit"] == manifest["gasLimit"]

    deployment = tmp_path / "deployment.json"
    result = runner.invoke(
        app,
        [
            "deploy",
            "--rpc",
            anvil_from_genesis,
            "--agencies",
            str(network4 / "agencies.json"),
            "--deployer-key-file",
            str(network4 / manifest["deployer"]["keyFile"]),
            "--out",
            str(deployment),
        ],
        env={"SIJILL_DEPLOYER_PASSPHRASE": PASSPHRASE},
    )
    assert result.exit_code == 0, result.output
    recorded = json.loads(deployment.read_text())
    assert recorded["chainId"] == manifest["chainId"]
    assert recorded["deployer"] == manifest["deployer"]["address"]

    # An agency signer of the file anchors on it, at gas price 0 (free gas).
    compiled = compile_contracts()
    ledger = bound_contracts(w3, recorded, compiled)["RecordLedger"]
    sender = TxManager(w3, signers[0], RevertDecoder({n: c.abi for n, c in compiled.items()}))
    from ledger.codes import record_type

    receipt = sender.transact(ledger.functions.anchor(record_type("title"), b"\x11" * 32, 1, 1, bytes(32)))
    assert receipt["status"] == 1
    assert w3.eth.get_transaction(receipt["transactionHash"])["gasPrice"] == 0

    # The largest call the node sends (a 1,024-leaf supersede, MAX_LEAVES_PER_CALL) fits a block
    # of the genesis gas limit with TxManager's headroom, and would not fit a 30 M block.
    old, new = ([os.urandom(32) for _ in range(MAX_LEAVES_PER_CALL)] for _ in range(2))
    receipt = sender.transact(ledger.functions.supersede(old, new, 1))
    assert receipt["status"] == 1
    assert 30_000_000 < receipt["gasUsed"] <= LARGEST_CALL_GAS * 1.01
    assert w3.eth.get_transaction(receipt["transactionHash"])["gas"] <= manifest["gasLimit"]


def test_the_dev_chain_takes_the_nodes_largest_call_like_the_besu_genesis() -> None:
    """anvil's usual 30 M gas refuses a 1,024-leaf supersede: the dev chain and the demo would
    retry it forever. The dev chain uses the network generator's default instead."""
    from node.chain.devchain import DevChainConfig

    assert DevChainConfig().gas_limit == DEFAULT_GAS_LIMIT >= MIN_GAS_LIMIT > LARGEST_CALL_GAS

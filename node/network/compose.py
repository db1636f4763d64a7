"""docker-compose.yml: the whole network on one Docker host (docs/besu.md, "Bring-up").

Validators on the official Besu image with static addresses on a private network, an init
container per validator that unlocks its key into a tmpfs, and one `sijill serve` per agency
pointed at its own validator; written as YAML with the colons Compose needs quoted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml  # type: ignore[import-untyped]

from node.network.configs import Validator
from node.network.options import (
    API_PORT,
    BESU_CONFIG,
    BESU_DATA,
    BESU_GENESIS,
    BESU_IMAGE,
    BESU_KEY,
    BESU_KEY_DIR,
    BESU_PERMISSIONS_DIR,
    BESU_UID,
    PASSPHRASE_ENV,
    NetworkOptions,
    subnet_of,
)


def env_name(code: str) -> str:
    return code.upper().replace("-", "_")


def compose_document(
    options: NetworkOptions,
    validators: Sequence[Validator],
    agencies: Sequence[dict[str, Any]],
    *,
    encrypted: bool,
) -> dict[str, Any]:
    """docker-compose.yml: validators on the official Besu image, agency nodes on Sijill's."""
    network = "sijill"
    besu_image = f"{BESU_IMAGE}:{options.besu_version}"
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    secrets_: dict[str, Any] = {}
    if encrypted:
        secrets_["network_passphrase"] = {"environment": PASSPHRASE_ENV}
    for v in validators:
        key_volume = f"{v.name}-key"
        volumes[key_volume] = {
            "driver": "local",
            "driver_opts": {
                "type": "tmpfs",
                "device": "tmpfs",
                "o": f"size=64k,mode=0700,uid={BESU_UID},gid={BESU_UID}",
            },
        }
        unlock = [
            f"chown {BESU_UID}:{BESU_UID} /data /permissions /permissions/permissions_config.toml",
            f"sijill network unlock-key /network/{v.name} --out {BESU_KEY} --owner {BESU_UID}:{BESU_UID}"
            + (" --passphrase-file /run/secrets/network_passphrase" if encrypted else ""),
            # Root only for the chown and the key; the holder then sleeps as Besu's user.
            f"exec setpriv --reuid={BESU_UID} --regid={BESU_UID} --clear-groups sleep infinity",
        ]
        init: dict[str, Any] = {
            "image": options.sijill_image,
            "restart": "unless-stopped",
            "user": "0:0",
            "network_mode": "none",
            "entrypoint": ["/bin/sh", "-c"],
            "command": [" && ".join(unlock)],
            "volumes": [
                f"./{v.name}:/network/{v.name}:ro",
                "./network.json:/network/network.json:ro",
                f"./{v.name}/data:/data",
                f"./{v.name}/permissions:/permissions",
                f"{key_volume}:{BESU_KEY_DIR}",
            ],
            "healthcheck": {
                "test": ["CMD", "test", "-s", BESU_KEY],
                "interval": "2s",
                "timeout": "2s",
                "retries": 60,
            },
        }
        if encrypted:
            init["secrets"] = ["network_passphrase"]
        services[f"init-{v.name}"] = init
        probe = (
            f"exec 3<>/dev/tcp/{v.host}/{v.rpc_port} && "
            f"printf 'GET /readiness?minPeers=1 HTTP/1.0\\r\\nHost: {v.host}\\r\\n\\r\\n' >&3 && "
            "head -n 1 <&3 | grep -q ' 200 '"
        )
        services[v.name] = {
            "image": besu_image,
            "restart": "unless-stopped",
            "depends_on": {f"init-{v.name}": {"condition": "service_healthy"}},
            # The image sets BESU_RPC_HTTP_HOST=0.0.0.0 (and WS, GraphQL): environment beats the
            # config file, so they are set back to the node's private address here.
            "environment": {
                "BESU_RPC_HTTP_HOST": v.host,
                "BESU_RPC_WS_HOST": v.host,
                "BESU_GRAPHQL_HTTP_HOST": v.host,
            },
            # The image's own entrypoint (besu-entry.sh) starts as root and drops to uid 1000;
            # this one replaces it, so the service names the user itself, or the JVM runs as root.
            "user": f"{BESU_UID}:{BESU_UID}",
            "entrypoint": ["/bin/bash", "-c"],
            "command": [
                f"until [ -s {BESU_KEY} ]; do echo 'waiting for the node key'; sleep 1; done; "
                f"exec /opt/besu/bin/besu --config-file={BESU_CONFIG}"
            ],
            "volumes": [
                f"./genesis.json:{BESU_GENESIS}:ro",
                f"./{v.name}/config.toml:{BESU_CONFIG}:ro",
                f"./{v.name}/permissions:{BESU_PERMISSIONS_DIR}",
                f"./{v.name}/data:{BESU_DATA}",
                f"{key_volume}:{BESU_KEY_DIR}:ro",
            ],
            "networks": {network: {"ipv4_address": v.host}},
            "healthcheck": {
                "test": ["CMD", "bash", "-c", probe],
                "interval": "10s",
                "timeout": "5s",
                "retries": 30,
                "start_period": "60s",
            },
            "stop_grace_period": "60s",
        }
    for agency in agencies:
        code, service = agency["code"], agency["service"]
        base = env_name(code)
        passphrase_secret, kek_secret = f"{base.lower()}_signer_passphrase", f"{base.lower()}_kek"
        secrets_[passphrase_secret] = {"environment": f"SIJILL_{base}_SIGNER_PASSPHRASE"}
        secrets_[kek_secret] = {"environment": f"SIJILL_{base}_KEK"}
        services[service] = {
            "image": options.sijill_image,
            "restart": "unless-stopped",
            "user": "${SIJILL_UID:-1000}:${SIJILL_GID:-1000}",
            "depends_on": {f"validator-{agency['validator']}": {"condition": "service_healthy"}},
            "command": [
                "serve",
                "--data-dir",
                "/var/lib/sijill",
                "--rpc",
                agency["rpcUrl"],
                "--deployment",
                "/network/deployment.json",
                "--agency",
                code,
                "--host",
                "0.0.0.0",
                "--port",
                str(API_PORT),
                "--passphrase-file",
                f"/run/secrets/{passphrase_secret}",
                "--kek-file",
                f"/run/secrets/{kek_secret}",
            ],
            "volumes": [
                f"./agencies/{code}:/var/lib/sijill",
                "./deployment.json:/network/deployment.json:ro",
            ],
            "secrets": [passphrase_secret, kek_secret],
            "ports": [f"127.0.0.1:{agency['apiPort']}:{API_PORT}"],
            "networks": {network: {"ipv4_address": agency["host"]}},
            "healthcheck": {
                "test": [
                    "CMD",
                    "python",
                    "-c",
                    "import urllib.request; "
                    f"urllib.request.urlopen('http://127.0.0.1:{API_PORT}/healthz', timeout=3)",
                ],
                "interval": "10s",
                "timeout": "5s",
                "retries": 12,
                "start_period": "30s",
            },
        }
    document: dict[str, Any] = {
        "name": f"sijill-{options.chain_id}",
        "services": services,
        "networks": {
            network: {"driver": "bridge", "ipam": {"config": [{"subnet": str(subnet_of(options))}]}}
        },
        "volumes": volumes,
        "secrets": secrets_,
    }
    return document


class _NoAliasDumper(yaml.SafeDumper):  # type: ignore[misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _quote_colons(dumper: yaml.SafeDumper, value: str) -> Any:
    """Strings with a colon (user "0:0", ports, volumes) in single quotes: a YAML 1.1 reader could
    take an unquoted `12:34` for a base-60 number, and Compose documents quoting them."""
    style = "'" if ":" in value and "\n" not in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_NoAliasDumper.add_representer(str, _quote_colons)


def compose_text(document: dict[str, Any]) -> str:
    header = (
        '# The Sijill network on one Docker host (docs/besu.md, "Bring-up"). Generated by\n'
        "# `sijill network init`. Needs SIJILL_NETWORK_PASSPHRASE (encrypted node keys) and, per\n"
        "# agency, SIJILL_<CODE>_SIGNER_PASSPHRASE and SIJILL_<CODE>_KEK in the environment.\n"
    )
    body: str = yaml.dump(
        document, Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False, width=4096
    )
    return header + body

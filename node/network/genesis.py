"""The network's genesis.json (docs/besu.md, "The genesis").

Chain id, every fork up to Shanghai at block 0, free gas, the block gas limit and the QBFT
extraData naming the validators (its codec: `node.network.extradata`). The contracts are not
in the `alloc`: `sijill deploy` creates them once the chain runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_utils.address import to_checksum_address

from node.network.extradata import encode_qbft_extra_data
from node.network.options import NetworkOptions

#: QBFT's genesis mixHash (Besu's BFT "magic" mix hash; the QBFT genesis examples in Besu's docs).
BFT_MIX_HASH = "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365"


def genesis_document(options: NetworkOptions, validator_addresses: Sequence[str]) -> dict[str, Any]:
    """Besu's genesis for the network (docs/besu.md, "The genesis").

    Every fork to Shanghai at block 0 under the names Besu reads (config/JsonGenesisConfigOptions:
    homesteadBlock ... grayGlacierBlock, shanghaiTime); `eip155Block` is for geth-style readers
    such as anvil (Besu applies EIP-155 with eip158Block). Free gas: `zeroBaseFee` and a
    genesis `baseFeePerGas` of 0. Validators sorted ascending, as `besu rlp encode` expects them.
    """
    validators = sorted((to_checksum_address(a) for a in validator_addresses), key=lambda a: a.lower())
    forks = (
        "homesteadBlock",
        "eip150Block",
        "eip155Block",
        "eip158Block",
        "byzantiumBlock",
        "constantinopleBlock",
        "petersburgBlock",
        "istanbulBlock",
        "muirGlacierBlock",
        "berlinBlock",
        "londonBlock",
        "arrowGlacierBlock",
        "grayGlacierBlock",
    )
    config: dict[str, Any] = {"chainId": options.chain_id}
    config.update(dict.fromkeys(forks, 0))
    config["shanghaiTime"] = 0
    config["zeroBaseFee"] = True
    config["qbft"] = {
        "blockperiodseconds": options.block_period,
        "epochlength": options.epoch_length,
        "requesttimeoutseconds": options.timeout,
    }
    return {
        "config": config,
        "nonce": "0x0",
        "timestamp": "0x0",
        "gasLimit": hex(options.gas_limit),
        "difficulty": "0x1",
        "mixHash": BFT_MIX_HASH,
        "coinbase": "0x" + "00" * 20,
        "baseFeePerGas": "0x0",
        "number": "0x0",
        "gasUsed": "0x0",
        "parentHash": "0x" + "00" * 32,
        "extraData": "0x" + encode_qbft_extra_data(validators).hex(),
        "alloc": {},
    }

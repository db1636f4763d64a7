"""Errors of the node. Each carries a message an operator can act on; none carries a key."""


class NodeError(Exception):
    """Base of every error the node raises on purpose."""


class ToolchainError(NodeError):
    """The contracts could not be compiled (missing compiler, compile errors)."""


class ChainError(NodeError):
    """The chain could not be reached, or answered something unexpected."""


class ContractRevert(ChainError):
    """A call or transaction reverted. `error` is the custom error's name, `args` its values."""

    def __init__(self, contract: str, error: str, args: dict[str, object], message: str) -> None:
        super().__init__(message)
        self.contract = contract
        self.error = error
        self.args_by_name = args


class DeploymentError(NodeError):
    """A deployment could not be made, or a deployment file is unusable."""


class StoreError(NodeError):
    """The node's LevelDB store cannot be opened or used as asked (in use, wrong key, corrupted)."""

"""The PERM JSON-RPC API of one Besu node: read and change its account allow-list.

Besu's PERM methods, as documented in the private network API reference
(https://besu.hyperledger.org/private-networks/reference/api, "PERM (Permissioning) methods";
not enabled by default: `--rpc-http-api=...,PERM`):

    perm_getAccountsAllowlist         params: []                  result: ["0x…", …]
    perm_addAccountsToAllowlist       params: [["0x…", "0x…"]]    result: "Success"
    perm_removeAccountsFromAllowlist  params: [["0x…", "0x…"]]    result: "Success"
    perm_getNodesAllowlist            params: []                  result: ["enode://…", …]

The address list is the one parameter, hence the double brackets. Besu keeps accounts in lower
case and answers errors with code -32000 (RpcErrorType in Besu's source): "Cannot add an existing
account to allowlist", "Cannot remove an absent account from allowlist", "Request contains an
invalid account", "Request contains duplicate accounts", "Request contains an empty list of
accounts", "Account allowlist has not been enabled", and, when it cannot write the permissions
file, "Unable to persist changes ... Changes reverted" or "... out of sync. The changes have been
applied, but not persisted to disk". One bad entry fails the whole request, nothing applied.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import httpx

GET_ACCOUNTS = "perm_getAccountsAllowlist"
ADD_ACCOUNTS = "perm_addAccountsToAllowlist"
REMOVE_ACCOUNTS = "perm_removeAccountsFromAllowlist"
GET_NODES = "perm_getNodesAllowlist"

# Besu's answers the sync reacts to (RpcErrorType; all with code -32000).
EXISTING_ENTRY = "Cannot add an existing account to allowlist"
ABSENT_ENTRY = "Cannot remove an absent account from allowlist"
ACCOUNTS_NOT_ENABLED = "Account allowlist has not been enabled"
NODES_NOT_ENABLED = "Node allowlist has not been enabled"
PERSIST_FAILURE = "Unable to persist changes to allowlist configuration file"  # "... Changes reverted"
FILE_SYNC = "The permissioning allowlist configuration file is out of sync"  # "... not persisted to disk"


class PermError(Exception):
    """A node answered a PERM call with a JSON-RPC error."""

    def __init__(self, method: str, code: int | None, message: str) -> None:
        super().__init__(f"{method}: {message}" + (f" (code {code})" if code is not None else ""))
        self.method = method
        self.code = code
        self.message = message


class Unreachable(Exception):
    """A node did not answer a PERM call (or answered something that is not JSON-RPC)."""


class BesuPerm:
    """The PERM JSON-RPC API of one Besu node, over HTTP."""

    def __init__(self, url: str, *, timeout: float = 10.0, token: str | None = None) -> None:
        self.url = url
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)
        self._ids = itertools.count(1)

    def close(self) -> None:
        self._client.close()

    def call(self, method: str, params: list[Any]) -> Any:
        """The result of `method`; `PermError` for a JSON-RPC error, `Unreachable` for no answer."""
        request = {"jsonrpc": "2.0", "method": method, "params": params, "id": next(self._ids)}
        try:
            response = self._client.post(self.url, json=request)
        except httpx.HTTPError as exc:
            raise Unreachable(f"no answer to {method} ({type(exc).__name__})") from None
        if response.status_code == 401:
            raise PermError(method, None, "HTTP 401: the node wants a JSON-RPC token (--auth-token-file)")
        if response.status_code == 403:  # Besu's --host-allowlist refuses the Host header
            raise PermError(method, None, "HTTP 403: call the node by a name its host-allowlist has")
        try:
            answer = response.json()
        except ValueError:
            raise Unreachable(f"{method}: HTTP {response.status_code}, not a JSON-RPC answer") from None
        if not isinstance(answer, dict):
            raise Unreachable(f"{method}: HTTP {response.status_code}, not a JSON-RPC answer")
        error = answer.get("error")
        if error is not None:
            if isinstance(error, dict):
                code = error.get("code")
                raise PermError(method, code if isinstance(code, int) else None, str(error.get("message")))
            raise PermError(method, None, str(error))
        if "result" not in answer:
            raise Unreachable(f"{method}: HTTP {response.status_code}, an answer without a result")
        return answer["result"]

    def accounts(self) -> set[str]:
        """The accounts allow-list, in lower case (as Besu keeps it)."""
        result = self.call(GET_ACCOUNTS, [])
        if not isinstance(result, list):
            raise Unreachable(f"{GET_ACCOUNTS}: a result that is not a list of accounts: {result!r}")
        return {str(a).lower() for a in result}

    def add_accounts(self, accounts: Sequence[str]) -> None:
        self._expect_success(ADD_ACCOUNTS, accounts)

    def remove_accounts(self, accounts: Sequence[str]) -> None:
        self._expect_success(REMOVE_ACCOUNTS, accounts)

    def nodes(self) -> list[str]:
        result = self.call(GET_NODES, [])
        if not isinstance(result, list):
            raise Unreachable(f"{GET_NODES}: a result that is not a list of enode URLs: {result!r}")
        return [str(e) for e in result]

    def _expect_success(self, method: str, accounts: Sequence[str]) -> None:
        result = self.call(method, [list(accounts)])  # one parameter: the list of addresses
        if result != "Success":
            raise Unreachable(f'{method}: answered {result!r}, not "Success"')

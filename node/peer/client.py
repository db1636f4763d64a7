"""The client side of peer requests: `PeerClient` signs requests to another agency's node
(node/peer/signing.py) and fetches the proof bundles of its records."""

from __future__ import annotations

from typing import Any

import httpx

from ledger.bundle import Bundle, BundleError, load_bundle
from ledger.codes import AGENCY_CODE_PATTERN, RECORD_ID_PATTERN, RECORD_TYPE_PATTERN
from node.errors import NodeError
from node.peer.signing import sign_request


class PeerRequestError(NodeError):
    """A request to another agency's node that did not give what was asked. `status` is the
    HTTP status (None when no answer came), `detail` the problem's detail or what went wrong."""

    def __init__(self, status: int | None, detail: str, problem: dict[str, Any] | None = None) -> None:
        super().__init__(f"{detail} (HTTP {status})" if status is not None else detail)
        self.status = status
        self.detail = detail
        self.problem = problem if problem is not None else {}


class PeerClient:
    """Signs and sends requests to another agency's node API (httpx).

    `agency` is this node's agency and `account_key` its signer key; `audience` is the agency
    whose node is at `base_url`."""

    def __init__(
        self, base_url: str, *, agency: str, audience: str, account_key: bytes, timeout: float = 10.0
    ) -> None:
        for what, code in (("agency", agency), ("audience", audience)):
            if not AGENCY_CODE_PATTERN.fullmatch(code):
                raise NodeError(f"the {what} {code!r} is not an agency code")
        self.agency = agency
        self.audience = audience
        self._key = account_key
        self._http = httpx.Client(base_url=base_url, timeout=timeout)

    def request(self, method: str, path: str, *, body: bytes = b"") -> httpx.Response:
        """Send a signed request; the signature covers the target as httpx puts it on the wire."""
        request = self._http.build_request(method, path, content=body)
        target = request.url.raw_path.decode("ascii")
        request.headers.update(
            sign_request(
                self._key, method=method, path=target, audience=self.audience, agency=self.agency, body=body
            )
        )
        try:
            return self._http.send(request)
        except httpx.HTTPError as exc:
            raise PeerRequestError(
                None,
                f"the {self.audience} node at {self._http.base_url} did not answer: {type(exc).__name__}",
            ) from exc

    def get(self, path: str) -> httpx.Response:
        """A signed GET of `path` (with its query string, if any)."""
        return self.request("GET", path)

    def fetch_bundle(self, record_type: str, record_id: str) -> Bundle:
        """The proof bundle of a record of the called agency, as its policy lets this agency see
        it. Checked to be a well-formed bundle of that very record; verify it against the chain
        (`ledger.verify`) before relying on it."""
        if not RECORD_TYPE_PATTERN.fullmatch(record_type) or not RECORD_ID_PATTERN.fullmatch(record_id):
            raise NodeError(f"{record_type!r}/{record_id!r} is not a record type and id")
        response = self.get(f"/v1/peer/records/{record_type}/{record_id}/bundle")
        if response.status_code != 200:
            problem = _problem(response)
            detail = problem.get("detail")
            raise PeerRequestError(
                response.status_code,
                str(detail) if isinstance(detail, str) and detail else response.reason_phrase,
                problem,
            )
        try:
            bundle = load_bundle(response.content)
        except BundleError as exc:
            raise PeerRequestError(200, f"the {self.audience} node sent an invalid bundle: {exc}") from None
        if (bundle.agency, bundle.record_type, bundle.record_id) != (self.audience, record_type, record_id):
            raise PeerRequestError(
                200,
                f"the {self.audience} node sent the bundle of {bundle.agency} {bundle.record_type} "
                f"{bundle.record_id}, not of the record asked for",
            )
        return bundle

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> PeerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _problem(response: httpx.Response) -> dict[str, Any]:
    """The RFC 9457 problem document of an error response ({} if it has none)."""
    try:
        document = response.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}

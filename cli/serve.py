"""`sijill serve`: one agency node (batcher, indexer) and its HTTP API in one process."""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.node import Agency, DataDir, Deployment, KekFile, PassphraseFile, Rpc, StoreOption, _node


def serve_command(
    data_dir: DataDir,
    rpc: Rpc,
    deployment: Deployment,
    agency: Agency,
    host: Annotated[str, typer.Option(envvar="SIJILL_HOST", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="SIJILL_PORT", help="Port to listen on.")] = 8600,
    batch_size: Annotated[int, typer.Option(help="Leaves per batch (a batch also closes by age).")] = 10_000,
    max_age: Annotated[
        float, typer.Option(help="Seconds a pending leaf waits at most before its batch closes.")
    ] = 2.0,
    passphrase_file: PassphraseFile = None,
    kek_file: KekFile = None,
    store: StoreOption = None,
    peer_policy: Annotated[
        Path | None,
        typer.Option(help="JSON file: what other agencies may see (default <data-dir>/peer-policy.json)."),
    ] = None,
    max_body: Annotated[int, typer.Option(help="Largest JSON request body, bytes.")] = 1 << 20,
    max_line: Annotated[int, typer.Option(help="Largest line of a bulk NDJSON upload, bytes.")] = 64 * 1024,
    rate_limit: Annotated[float, typer.Option(help="Requests a second per officer token (0: none).")] = 200.0,
    access_log: Annotated[bool, typer.Option(help="Log every request (uvicorn's access log).")] = False,
    public_url: Annotated[
        str | None,
        typer.Option(
            envvar="SIJILL_PUBLIC_URL",
            help="How citizens reach this node, for QR codes (default: the URL a request came to).",
        ),
    ] = None,
    public_rate: Annotated[
        float, typer.Option(help="Public requests (verify page, certificates, /rpc) a second per client.")
    ] = 20.0,
    miss_limit: Annotated[
        int, typer.Option(help="Unknown certificate codes a client address may try a minute.")
    ] = 10,
    ready_anchor_margin: Annotated[
        float,
        typer.Option(help="/readyz is 503 when a leaf's anchorBy is less than this many seconds away."),
    ] = 120.0,
    ready_max_stall: Annotated[
        float,
        typer.Option(
            help="/readyz is 503 when anchoring makes no progress this many seconds while batches wait."
        ),
    ] = 60.0,
    verify_peer: Annotated[
        list[str] | None,
        typer.Option(
            help="Another agency's /rpc URL the verify page offers for a cross-check (repeat); "
            "pages from its origin may read this node's /rpc."
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            envvar="SIJILL_CORS_ORIGIN",
            help="Another origin whose pages may read this node's /rpc, e.g. https://portal.example.gov.eg "
            "(repeat; in the environment, separated by spaces).",
        ),
    ] = None,
) -> None:
    """Serve an agency node's API (officers, auditors, verification, node-to-node) until stopped.

    Example: sijill serve --data-dir .data/repd --agency REPD --port 8601
    --deployment .data/devchain/deployment.json
    """
    import uvicorn

    from api.app import ApiSettings, create_app
    from api.citizen import public_url_problem
    from api.http_protocol import problem_http_protocol
    from api.rpcproxy import cors_origin_problem, origin_of

    if public_url is not None and (problem := public_url_problem(public_url)) is not None:
        raise typer.BadParameter(problem, param_hint="--public-url")
    for peer in verify_peer or ():
        if origin_of(peer) is None:
            raise typer.BadParameter(f"{peer!r} is not an http(s) URL of a /rpc", param_hint="--verify-peer")
    for origin in cors_origin or ():
        if (problem := cors_origin_problem(origin)) is not None:
            raise typer.BadParameter(problem, param_hint="--cors-origin")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if peer_policy is None and (data_dir / "peer-policy.json").exists():
        peer_policy = data_dir / "peer-policy.json"
    settings = ApiSettings(
        max_body=max_body,
        max_line=max_line,
        rate_limit=rate_limit,
        rate_burst=max(1.0, rate_limit * 2),
        peer_policy=peer_policy,
        public_url=public_url,
        public_rate=public_rate,
        public_burst=max(1.0, public_rate * 3),
        miss_limit=miss_limit,
        ready_anchor_margin=ready_anchor_margin,
        ready_max_stall=ready_max_stall,
        verify_peers=tuple(verify_peer or ()),
        cors_origins=tuple(cors_origin or ()),
    )
    node = _node(data_dir, rpc, deployment, agency, batch_size, max_age, passphrase_file, kek_file, store)
    app = create_app(node, settings)
    node.start()
    # Everything built so far (web3, contracts, pydantic models, routes) lives as long as the
    # process: move it out of the collector's sight, so full collections stay short (tail latency).
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=access_log,
        server_header=False,
        timeout_graceful_shutdown=10,
        http=problem_http_protocol(),  # malformed HTTP gets problem details too
    )
    server = _server_class()(config)
    print(
        f"serving {agency} on http://{host}:{port} (OpenAPI: http://{host}:{port}/openapi.json)", flush=True
    )
    try:
        server.run()
    finally:
        app.state.sijill.close()
        node.stop()


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, except that a SIGTERM or Ctrl-C ends `run()` instead of being raised
        again once uvicorn has shut down (its default), which would kill the process before the
        node is stopped: the batcher and indexer joined, the read audit buffer flushed, the store
        closed."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            handlers = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in handlers.items():
                    signal.signal(sig, handler)

    return Server

"""`sijill node ...`: set up and run an agency node, and load records in bulk.

Settings come from flags or environment variables: SIJILL_DATA_DIR, SIJILL_RPC_URL,
SIJILL_DEPLOYMENT, SIJILL_AGENCY, SIJILL_SIGNER_PASSPHRASE (or --passphrase-file), SIJILL_KEK
(64 hex digits, or --kek-file) and SIJILL_STORE (--store: LevelDB in <data-dir>/store by
default, or a PostgreSQL database; docs/storage.md). `node init --dev` writes a development KEK
and passphrase into the data directory (mode 0600): for the dev chain only.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from node.errors import NodeError

node_app = typer.Typer(help="Set up and run an agency node.", no_args_is_help=True)
out = Console()

DataDir = Annotated[Path, typer.Option("--data-dir", envvar="SIJILL_DATA_DIR", help="The node's directory.")]
Rpc = Annotated[str, typer.Option("--rpc", envvar="SIJILL_RPC_URL", help="JSON-RPC endpoint.")]
Deployment = Annotated[
    Path, typer.Option("--deployment", envvar="SIJILL_DEPLOYMENT", help="Deployment file.")
]
Agency = Annotated[str, typer.Option("--agency", envvar="SIJILL_AGENCY", help="Agency code, e.g. REPD.")]
BatchSize = Annotated[int, typer.Option(help="Leaves per batch (a batch also closes by age).")]
MaxAge = Annotated[float, typer.Option(help="Seconds a pending leaf waits at most before its batch closes.")]
PassphraseFile = Annotated[
    Path | None, typer.Option(help="File holding the keystore passphrase (else SIJILL_SIGNER_PASSPHRASE).")
]
KekFile = Annotated[Path | None, typer.Option(help="File holding the key-encryption key (else SIJILL_KEK).")]
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="SIJILL_STORE",
        help="The node's store: leveldb:PATH (default: <data-dir>/store) or a PostgreSQL database, "
        "postgresql://user@host:port/dbname (a libpq URI, several hosts allowed) or postgresql:CONNINFO. "
        "See docs/storage.md.",
    ),
]


def store_location(data_dir: Path, store: str | None) -> str:
    """The store a command opens: `--store`, else the LevelDB directory `<data-dir>/store`."""
    return store if store else f"leveldb:{data_dir / 'store'}"


@node_app.command("init")
def init_command(
    data_dir: DataDir,
    agency: Agency,
    dev_account: Annotated[
        int | None,
        typer.Option(help="Use anvil dev account N as the signer and write dev secrets (dev chain only)."),
    ] = None,
    private_key_file: Annotated[
        Path | None, typer.Option(help="Import this hex private key as the signer.")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Create a node's directory: encrypted signer keystore, store, and (with --dev-account) dev secrets.

    Example: sijill node init --data-dir .data/repd --agency REPD --dev-account 1
    """
    from node.chain.deploy import dev_accounts
    from node.keys import create_keystore
    from node.store import Store, load_kek

    # Never writable by others, whatever the umask: it holds the keystore and the dev secrets.
    data_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    keystore = data_dir / "signer.json"
    if dev_account is not None:
        _write_secret(data_dir / "dev-passphrase", secrets.token_urlsafe(24))
        _write_secret(data_dir / "dev-kek", secrets.token_hex(32))
        os.environ.setdefault("SIJILL_SIGNER_PASSPHRASE", (data_dir / "dev-passphrase").read_text())
        os.environ.setdefault("SIJILL_KEK", (data_dir / "dev-kek").read_text())
        key = bytes(dev_accounts(dev_account + 1)[dev_account].key)
    elif private_key_file is not None:
        key = bytes.fromhex(private_key_file.read_text().strip().removeprefix("0x"))
    else:
        key = secrets.token_bytes(32)
    passphrase = os.environ.get("SIJILL_SIGNER_PASSPHRASE")
    if not passphrase:
        raise NodeError("set SIJILL_SIGNER_PASSPHRASE to the passphrase the keystore is to be encrypted with")
    address = create_keystore(
        keystore, passphrase, key, kdf_iterations=2**14 if dev_account is not None else None
    )
    Store(store_location(data_dir, store), load_kek(None), create=True).close()
    (data_dir / "node.json").write_text(json.dumps({"agency": agency, "signer": address}, indent=2) + "\n")
    out.print(f"Node for {agency} in {data_dir}: signer {address} (register it through the council if new)")


@node_app.command("ingest")
def ingest_command(
    file: Annotated[Path, typer.Argument(help='NDJSON: one {"recordType": ..., "record": {...}} per line.')],
    data_dir: DataDir,
    rpc: Rpc,
    deployment: Deployment,
    agency: Agency,
    batch_size: BatchSize = 10_000,
    max_age: MaxAge = 2.0,
    passphrase_file: PassphraseFile = None,
    kek_file: KekFile = None,
    chunk: Annotated[int, typer.Option(help="Records committed per write batch.")] = 1000,
    store: StoreOption = None,
    workers: Annotated[
        int,
        typer.Option(
            min=0, help="Processes that validate, seal and sign records beside this one (0: this one does)."
        ),
    ] = 0,
) -> None:
    """Load records in bulk, resumably, and anchor them all before returning.

    A run that is killed can be started again with the same file: records already accepted are
    skipped, batches already sent are checked against the chain, nothing is anchored twice.
    Example: sijill node ingest legacy.ndjson --data-dir .data/repd --agency REPD
    """
    node = _node(
        data_dir, rpc, deployment, agency, batch_size, max_age, passphrase_file, kek_file, store, workers
    ).start()
    accepted = rejected = 0
    try:
        resume_key = _content_key(file)
        for result in node.intake.submit_many(
            _read_ndjson(file), actor="cli:ingest", request_id=resume_key, chunk=chunk, resume_key=resume_key
        ):
            if hasattr(result, "leaf"):
                accepted += 1
            else:
                rejected += 1
            if (accepted + rejected) % chunk == 0:
                node.batcher.wake()
        node.batcher.stop()
        node.batcher.drain()
    finally:
        node.stop()
    print(json.dumps({"accepted": accepted, "rejected": rejected, "file": str(file)}))


@node_app.command("run")
def run_command(
    data_dir: DataDir,
    rpc: Rpc,
    deployment: Deployment,
    agency: Agency,
    batch_size: BatchSize = 10_000,
    max_age: MaxAge = 5.0,
    passphrase_file: PassphraseFile = None,
    kek_file: KekFile = None,
    store: StoreOption = None,
) -> None:
    """Run the batcher and indexer until stopped (SIGTERM or Ctrl-C).

    Example: sijill node run --data-dir .data/repd --agency REPD --deployment .data/devchain/deployment.json
    """
    node = _node(
        data_dir, rpc, deployment, agency, batch_size, max_age, passphrase_file, kek_file, store
    ).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    out.print(f"node {agency} running, signer {node.signer.address}")
    try:
        while True:
            time.sleep(5)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        node.stop()


def _node(
    data_dir: Path,
    rpc: str,
    deployment: Path,
    agency: str,
    batch_size: int,
    max_age: float,
    passphrase_file: Path | None = None,
    kek_file: Path | None = None,
    store: str | None = None,
    intake_workers: int = 0,
) -> Any:
    from node.batcher import BatcherSettings
    from node.service import AgencyNode, NodeSettings

    for name, variable in (("dev-passphrase", "SIJILL_SIGNER_PASSPHRASE"), ("dev-kek", "SIJILL_KEK")):
        if (data_dir / name).exists():
            os.environ.setdefault(variable, (data_dir / name).read_text())
    settings = NodeSettings(
        data_dir=data_dir,
        deployment=deployment,
        rpc_url=rpc,
        agency=agency,
        keystore=data_dir / "signer.json",
        passphrase_file=passphrase_file,
        kek_file=kek_file,
        store=store_location(data_dir, store),
        batcher=BatcherSettings(batch_size=batch_size, max_age=max_age),
        intake_workers=intake_workers,
    )
    return AgencyNode(settings, create=False)


def _read_ndjson(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                item = json.loads(line)
                yield str(item["recordType"]), item["record"]
            except (ValueError, KeyError, TypeError):
                yield "?", {"line": number}


def _content_key(path: Path) -> str:
    """The resume key of a bulk file: its content's hash, so another file never resumes it."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:32]


def _write_secret(path: Path, text: str) -> None:
    if path.exists():
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


@node_app.command("backup")
def backup_command(
    data_dir: DataDir,
    out_file: Annotated[
        Path, typer.Option("--out", help="The backup file to write (replaced if it exists).")
    ],
    kek_file: KekFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Back the node's store up into one file, while the node runs or not (a consistent snapshot).

    A running node writes the file itself when asked over its admin socket (so the file is the
    node's user's); a stopped node's store is read by this command. Secrets stay encrypted as
    stored. Example: sijill node backup --data-dir .data/repd --out /backup/repd-2026-12-07.sjb
    """
    from cli.officer import _errors, on_node_store

    with _errors():
        manifest = on_node_store(
            data_dir, kek_file, {"action": "node.backup", "out": str(out_file.resolve())}
        )
    if as_json:
        print(json.dumps(manifest))
        return
    counts, chain = manifest["counts"], manifest["chainHead"]
    anchored = manifest["lastAnchored"]
    out.print(
        f"Backup of {manifest['agency']} in {out_file}: {counts['records']} records, {counts['leaves']} "
        f"leaves, {counts['batches']} batches, {counts['tokens']} tokens ({manifest['bytes']} bytes); "
        f"last anchored batch {anchored['seq'] if anchored else 'none'}, chain head "
        f"{chain['seq'] if chain else 'unknown (the node is stopped)'}; digest {manifest['contentDigest']}"
    )


@node_app.command("restore")
def restore_command(
    data_dir: DataDir,
    from_file: Annotated[Path, typer.Option("--from", help="The backup file (`sijill node backup`).")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the node's store (moved aside, not deleted).")
    ] = False,
    kek_file: KekFile = None,
) -> None:
    """Put a backup back as the node's store; the node must be stopped. Then start the node.

    The file is checked against its manifest's digest first, and the store it makes is opened
    with the KEK before it replaces anything. An existing store is moved aside to
    `store.before-restore-<time>`, with --force only. Example: sijill node restore --data-dir
    .data/repd --from /backup/repd-2026-12-07.sjb
    """
    from cli.officer import _errors, node_agency, open_node_store

    with _errors():
        _restore(data_dir, from_file, force, kek_file, node_agency, open_node_store)


def _restore(
    data_dir: Path, from_file: Path, force: bool, kek_file: Path | None, agency_of: Any, opener: Any
) -> None:
    import shutil

    from node.backup import read_manifest, restore_backup

    manifest = read_manifest(from_file)
    agency = agency_of(data_dir) if (data_dir / "node.json").exists() else None
    if agency is not None and manifest.agency not in (None, agency):
        raise NodeError(
            f"{from_file} is a backup of {manifest.agency}'s node, and the node in {data_dir} is {agency}'s"
        )
    store_dir = data_dir / "store"
    if store_dir.exists() and any(store_dir.iterdir()):
        if not force:
            raise NodeError(
                f"the node in {data_dir} has a store already: give --force to replace it (it is moved aside)"
            )
        opener(data_dir, kek_file).close()  # refuses while the node runs
    staging = data_dir / "store.restoring"
    shutil.rmtree(staging, ignore_errors=True)
    restore_backup(from_file, staging)
    try:
        _mark_restored(staging, data_dir, kek_file, from_file, manifest.to_json())
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if store_dir.exists():
        aside = data_dir / f"store.before-restore-{int(time.time())}"
        store_dir.rename(aside)
        out.print(f"The store that was there is kept in {aside}.")
    staging.rename(store_dir)
    counts = manifest.counts
    out.print(
        f"Restored {from_file} into {store_dir}: {counts['records']} records, {counts['batches']} batches, "
        f"last anchored batch {manifest.lastAnchored['seq'] if manifest.lastAnchored else 'none'}. "
        "Start the node: it lines its log up with the chain and logs the batches anchored after the backup."
    )


def _mark_restored(
    store_dir: Path, data_dir: Path, kek_file: Path | None, source: Path, manifest: dict[str, Any]
) -> None:
    """Open the restored store with the node's KEK (a wrong KEK fails here, before anything is
    replaced), note the restore (`meta/restored`, read by the node at start) and audit it."""
    from node.store import Store, load_kek

    dev_kek = data_dir / "dev-kek"
    if kek_file is None and not os.environ.get("SIJILL_KEK") and dev_kek.exists():
        kek_file = dev_kek
    now = int(time.time())
    with Store(store_dir, load_kek(None, kek_file)) as store, store.write_batch() as wb:
        note = {"at": now, "file": source.name, "createdAt": manifest["createdAt"]}
        store.put_json(wb, b"meta/restored", {**note, "lastAnchored": manifest["lastAnchored"]})
        store.audit(
            wb,
            actor="cli:node",
            action="node.restore",
            request_id=secrets.token_hex(8),
            subject=source.name,
            at=now,
            details={"contentDigest": manifest["contentDigest"], "backupCreatedAt": manifest["createdAt"]},
        )


@node_app.command("migrate-store")
def migrate_store_command(
    from_store: Annotated[
        str, typer.Option("--from", help="The node's LevelDB store: leveldb:PATH (e.g. <data-dir>/store).")
    ],
    to_store: Annotated[
        str,
        typer.Option("--to", help="An empty PostgreSQL database: postgresql://user@host:port/dbname."),
    ],
    kek_file: KekFile = None,
) -> None:
    """Copy a stopped node's LevelDB store into an empty PostgreSQL database, then check the copy.

    Every key is copied as stored (secrets stay sealed); the KEK must be the store's. Then the
    keys per prefix and a digest of both sides are compared (exit 1 if they differ). Example:
    sijill node migrate-store --from leveldb:/var/lib/sijill/repd/store --to
    postgresql://repd@db1:5432/sijill_repd; then run the node with --store postgresql://...
    """
    from cli.officer import _errors
    from node.store import load_kek
    from node.store.backend import leveldb_path
    from node.store.migrate import migrate_store

    with _errors():
        dev_kek = leveldb_path(from_store).parent / "dev-kek"
        if kek_file is None and not os.environ.get("SIJILL_KEK") and dev_kek.exists():
            kek_file = dev_kek
        done = migrate_store(from_store, to_store, load_kek(None, kek_file))
    out.print(f"Copied {done.before.keys} keys from {done.source} to {done.target}.")
    out.print(f"{'prefix':<12} {'LevelDB':>10} {'PostgreSQL':>10}")
    for prefix in sorted(done.before.counts.keys() | done.after.counts.keys()):
        was, now = done.before.counts.get(prefix, 0), done.after.counts.get(prefix, 0)
        out.print(f"{prefix:<12} {was:>10} {now:>10}{'' if was == now else '  differs'}", highlight=False)
    out.print(f"digest       {done.before.digest}\n             {done.after.digest}", highlight=False)
    if not done.ok:
        print(f"error: the copy in {done.target} differs from the LevelDB store", file=sys.stderr)
        raise typer.Exit(1)
    out.print(
        f"The copy matches. Run the node on it: give its commands --store with what you gave --to "
        f"(or SIJILL_STORE, or store in its config file), e.g. sijill serve --store '{done.target}' ...; "
        "the LevelDB store is left as it was.",
        highlight=False,
    )

"""Where `sijill verify` finds its bundles: files, directories, stdin and URLs, read lazily.

`expand_sources` names the sources in order (a directory as its Path) and counts the bundles
they hold; `source_items` yields one `Item` per bundle: its label and a payload, the file to
read, the bytes read from stdin (one document, or NDJSON: one bundle a line, labelled `-:LINE`)
or fetched from a node (GET, 200 only, at most `MAX_BUNDLE_BYTES`), or `Unreadable` saying why
there is none. Directories are walked lazily, so a million bundles are never listed at once.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO


class Unreadable(Exception):
    """A source that yields no bundle document; the message says why."""


Payload = Path | bytes | Unreadable
Item = tuple[str, Payload]


def expand_sources(sources: list[str]) -> tuple[list[str | Path], int | None]:
    """The sources in order, a directory as its Path, and how many bundles they hold (None when
    stdin is among them: its count is known only once read)."""
    names: list[str | Path] = [s if s == "-" or _is_url(s) else Path(s) for s in sources]
    if "-" in names:
        return names, None
    return names, sum(sum(1 for _ in _walk(n)) if isinstance(n, Path) and n.is_dir() else 1 for n in names)


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _is_dir(name: str | Path) -> bool:
    return isinstance(name, Path) and name.is_dir()


def _walk(directory: Path) -> Iterator[Path]:
    """Every *.json file under `directory`, lazily: its own files by name, then each of its
    subdirectories by name (not following links to directories)."""
    with os.scandir(directory) as scan:
        entries = sorted(scan, key=lambda e: e.name)
    for entry in entries:
        if entry.name.endswith(".json") and entry.is_file():
            yield Path(entry.path)
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path))


def source_items(names: list[str | Path], headers: dict[str, str], stdin: BinaryIO | None) -> Iterator[Item]:
    """(label, payload) for every bundle: a file to read, or the bytes read or fetched, or why not."""
    fetcher = None
    for name in names:
        if _is_dir(name):
            yield from ((str(path), path) for path in _walk(Path(name)))
        elif isinstance(name, Path):
            yield str(name), name
        elif name == "-":
            yield from _stdin_items(stdin or sys.stdin.buffer)
        else:
            if fetcher is None:
                import httpx

                fetcher = httpx.Client(headers=headers, timeout=30.0, follow_redirects=True)
            yield name, _fetch(fetcher, name)
    if fetcher is not None:
        fetcher.close()


def _stdin_items(stream: BinaryIO) -> Iterator[Item]:
    """One bundle (a JSON document over any number of lines), or NDJSON: one bundle per line,
    labelled `-:LINE`. It is NDJSON when its first non-blank line is a whole JSON document."""
    lines = enumerate(stream, start=1)
    first = next(((n, line) for n, line in lines if line.strip()), None)
    if first is None:
        return
    try:
        json.loads(first[1])
    except ValueError:
        yield "-", first[1] + b"".join(line for _, line in lines)
        return
    second = next(((n, line) for n, line in lines if line.strip()), None)
    if second is None:
        yield "-", first[1]
        return
    for n, line in chain((first, second), lines):
        if line.strip():
            yield f"-:{n}", line


def _fetch(client: Any, url: str) -> bytes | Unreadable:
    """A bundle from a node (GET, 200 only), at most MAX_BUNDLE_BYTES."""
    import httpx

    from ledger.bundle import MAX_BUNDLE_BYTES
    from node.chain.rpcbatch import transport_reason

    try:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                response.read()
                return Unreadable(f"HTTP {response.status_code} {response.reason_phrase}{_problem(response)}")
            data = bytearray()
            for piece in response.iter_bytes():
                data += piece
                if len(data) > MAX_BUNDLE_BYTES:
                    return Unreadable(f"more than {MAX_BUNDLE_BYTES} bytes: not a bundle")
            return bytes(data)
    except httpx.HTTPError as exc:
        return Unreadable(f"cannot fetch it: {transport_reason(exc)}")


def _problem(response: Any) -> str:
    """The detail of an RFC 9457 problem answer, if it is one."""
    try:
        problem = response.json()
        detail = problem.get("detail") or problem.get("title")
    except (ValueError, AttributeError):
        return ""
    return f" ({detail})" if isinstance(detail, str) and detail else ""

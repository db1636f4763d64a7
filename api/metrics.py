"""Prometheus metrics in the text exposition format (version 0.0.4), without a client library.

Counters are kept in process; gauges about the node (backlog, indexer lag, anchored batches)
are read when `/metrics` is scraped.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.latency_count: dict[str, int] = defaultdict(int)
        self.records: dict[tuple[str, str], int] = defaultdict(int)  # (how, outcome) -> count
        self.errors: dict[str, int] = defaultdict(int)  # problem kind -> count

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, method, str(status))] += 1
            buckets = self.latency.setdefault(route, [0] * (len(LATENCY_BUCKETS) + 1))
            buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self.latency_sum[route] += seconds
            self.latency_count[route] += 1
            if status >= 400:
                self.errors[str(status)] += 1

    def count_records(self, how: str, accepted: int, rejected: int) -> None:
        with self._lock:
            self.records[(how, "accepted")] += accepted
            self.records[(how, "rejected")] += rejected

    def render(
        self,
        gauges: Iterable[tuple[str, str, str, float | int | None]],
        refused: Mapping[int, int] | None = None,
    ) -> str:
        """The exposition text; `gauges` are (name, type, help, value) read at scrape time, and
        `refused` the requests the HTTP layer answered itself, by status
        (api/http_protocol.py `refusal_counts`)."""
        lines: list[str] = []
        with self._lock:
            _header(
                lines, "sijill_http_requests_total", "counter", "HTTP requests by route, method and status"
            )
            for (route, method, status), count in sorted(self.requests.items()):
                labels = f'route="{_esc(route)}",method="{method}",status="{status}"'
                lines.append(f"sijill_http_requests_total{{{labels}}} {count}")
            _header(lines, "sijill_http_request_seconds", "histogram", "HTTP request latency by route")
            for route, buckets in sorted(self.latency.items()):
                cumulative = 0
                for bound, count in zip((*LATENCY_BUCKETS, float("inf")), buckets, strict=True):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    lines.append(
                        f'sijill_http_request_seconds_bucket{{route="{_esc(route)}",le="{le}"}} {cumulative}'
                    )
                lines.append(
                    f'sijill_http_request_seconds_sum{{route="{_esc(route)}"}} {self.latency_sum[route]:.6f}'
                )
                lines.append(
                    f'sijill_http_request_seconds_count{{route="{_esc(route)}"}} {self.latency_count[route]}'
                )
            _header(
                lines,
                "sijill_records_total",
                "counter",
                "Records taken in, by path (single, bulk) and outcome",
            )
            for (how, outcome), count in sorted(self.records.items()):
                lines.append(f'sijill_records_total{{path="{how}",outcome="{outcome}"}} {count}')
            _header(lines, "sijill_http_errors_total", "counter", "Error answers by status")
            for status, count in sorted(self.errors.items()):
                lines.append(f'sijill_http_errors_total{{status="{status}"}} {count}')
        _header(
            lines,
            "sijill_http_refused_total",
            "counter",
            "Requests the HTTP layer refused before the app saw them, by status "
            "(400 unreadable, 414 request line too long, 431 header fields too large)",
        )
        for refused_status, refused_count in sorted((refused or {}).items()):
            lines.append(f'sijill_http_refused_total{{status="{refused_status}"}} {refused_count}')
        for name, kind, help_text, value in gauges:
            _header(lines, name, kind, help_text)
            lines.append(f"{name} {'NaN' if value is None else value}")
        return "\n".join(lines) + "\n"


def _header(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

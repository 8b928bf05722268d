"""The Prometheus text of Knative's queue-proxy and of cAdvisor, for the harness stand-ins only.

Shared by emulator.py (the demo's and the evaluation's data plane) and
knative_metrics_standin.py (the autoscaler's end-to-end tests): the request-duration histogram
``kn_serving_invocation_duration_seconds`` with Knative's buckets, ``target_info`` carrying the
revision as OpenTelemetry resource attributes, and ``container_cpu_usage_seconds_total``;
and the quiet base of their HTTP handlers.
"""
from __future__ import annotations

from http.server import BaseHTTPRequestHandler

BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
CPU_USAGE_TYPE = "# TYPE container_cpu_usage_seconds_total counter"
_STATUS = 'http_response_status_code="200"'


def observe(buckets: list, latency_s: float, n: float = 1) -> None:
    """Adds ``n`` observations of ``latency_s`` to cumulative ``buckets`` (``BUCKETS_S``, then +Inf)."""
    for i, le in enumerate(BUCKETS_S):
        if latency_s <= le:
            buckets[i] += n
    buckets[-1] += n


def invocation_histogram(buckets: list, total_s: float, count: float, with_help: bool = False) -> list[str]:
    """The histogram's lines; ``buckets`` are cumulative, as ``observe`` keeps them."""
    out = ["# HELP kn_serving_invocation_duration_seconds The duration of invocations"] if with_help else []
    out.append("# TYPE kn_serving_invocation_duration_seconds histogram")
    for le, c in zip([*map(str, BUCKETS_S), "+Inf"], buckets):
        out.append(f'kn_serving_invocation_duration_seconds_bucket{{{_STATUS},le="{le}"}} {c}')
    out.append(f"kn_serving_invocation_duration_seconds_sum{{{_STATUS}}} {total_s}")
    out.append(f"kn_serving_invocation_duration_seconds_count{{{_STATUS}}} {count}")
    return out


def target_info(namespace: str, service: str, configuration: str, revision: str,
                pod: str | None = None) -> list[str]:
    """``target_info`` of one queue-proxy target (with ``k8s_pod_name`` when ``pod`` is given)."""
    pod_label = f'k8s_pod_name="{pod}",' if pod is not None else ""
    return ["# TYPE target_info gauge",
            "target_info{"
            f'k8s_container_name="queue-proxy",k8s_namespace_name="{namespace}",{pod_label}'
            f'kn_configuration_name="{configuration}",kn_revision_name="{revision}",'
            f'kn_service_name="{service}",service_name="{service}"'
            "} 1"]


def cpu_usage(container: str, namespace: str, pod: str, seconds: object) -> str:
    """One ``container_cpu_usage_seconds_total`` sample; ``seconds`` is written as given."""
    return ("container_cpu_usage_seconds_total{"
            f'container="{container}",namespace="{namespace}",pod="{pod}"}} {seconds}')


def exposition(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


class MetricsHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers with ``_send`` (Prometheus text by default)."""

    def log_message(self, fmt: str, *args) -> None:  # quiet
        pass

    def _send(self, code: int, body: str, ctype: str = "text/plain; version=0.0.4") -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

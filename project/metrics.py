"""GET /metrics: Prometheus's text format, closed to the public. It answers only clients from
METRICS_ALLOWED_NETWORKS (loopback by default: a scraper beside the process, or through a proxy that does not
forward the path) and, when METRICS_TOKEN is set, only with `Authorization: Bearer <token>`; anyone else gets
404, as if it did not exist."""

from __future__ import annotations

import hmac
import ipaddress
import os

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest, multiprocess
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

from projections.selectors import projection_status_list


def _allowed(request) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    networks = [ipaddress.ip_network(net.strip()) for net in settings.METRICS_ALLOWED_NETWORKS.split(",") if net]
    if not any(address in network for network in networks):
        return False
    token = settings.METRICS_TOKEN
    if not token:
        return True
    given = request.META.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ")
    return hmac.compare_digest(given.encode(), token.encode())


def _projection_lag(registry: CollectorRegistry) -> None:
    labels = ["projection"]
    events = Gauge("fintech_projection_lag_events", "Events yet to apply.", labels, registry=registry)
    seconds = Gauge("fintech_projection_lag_seconds", "Age of the oldest one.", labels, registry=registry)
    stopped = Gauge("fintech_projection_stopped", "1 when stopped on an error.", labels, registry=registry)
    for status in projection_status_list():
        events.labels(projection=status.name).set(status.lag_events)
        seconds.labels(projection=status.name).set(status.lag_seconds)
        stopped.labels(projection=status.name).set(1 if status.error else 0)


@never_cache
@require_GET
def metrics(request):
    if not _allowed(request):
        raise Http404
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(DEFAULT_REGISTRY)
    lag = CollectorRegistry()
    _projection_lag(lag)
    return HttpResponse(body + generate_latest(lag), content_type=CONTENT_TYPE_LATEST)

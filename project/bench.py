"""The floor `make bench` measures the API's read path against: a view that does one Redis GET of a payment's
cached document and returns its bytes, through the same server and middleware. Mounted only when
FINTECH_BENCH_ENDPOINTS is set (the bench's own server), never in a deployment."""

from django.http import HttpResponse, HttpResponseNotFound
from django_redis import get_redis_connection


def redis_get(request, payment_id: str):
    value = get_redis_connection("default").get(f"payment:{payment_id}")
    if value is None:
        return HttpResponseNotFound()
    return HttpResponse(value, content_type="application/json")

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from fintech.routing import method_routes
from payments.api import PaymentCreateApi
from project import bench, health, metrics
from projections.api import PaymentListApi

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    # One URL, two sides: POST creates a payment (write side), GET lists them (read model).
    *method_routes("api/v1/payments", name="payment-create", post=PaymentCreateApi, get=PaymentListApi),
    path("api/v1/", include("payments.urls")),
    path("api/v1/", include("projections.urls")),
    path("api/v1/", include("vault.urls")),
    path("api/v1/", include("ledger.urls")),
    path("api/v1/", include("notifications.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

if settings.BENCH_ENDPOINTS:
    urlpatterns.append(path("bench/redis-get/<uuid:payment_id>", bench.redis_get, name="bench-redis-get"))

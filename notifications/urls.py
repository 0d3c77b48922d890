from fintech.routing import method_routes
from notifications import api

urlpatterns = [
    *method_routes(
        "webhook-endpoints", name="webhook-endpoints", post=api.WebhookEndpointCreateApi, get=api.WebhookEndpointListApi
    ),
    *method_routes(
        "webhook-endpoints/<str:endpoint_id>",
        name="webhook-endpoint",
        get=api.WebhookEndpointDetailApi,
        delete=api.WebhookEndpointDeleteApi,
    ),
]

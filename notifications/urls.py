from fintech.routing import api_routes, method_routes
from notifications import api

urlpatterns = [
    *api_routes(
        [
            ("webhook-endpoints/<str:endpoint_id>/deliveries", api.WebhookDeliveryListApi, "webhook-deliveries"),
            ("webhook-deliveries/<str:delivery_id>/retry", api.WebhookDeliveryRetryApi, "webhook-delivery-retry"),
            ("notifications", api.NotificationListApi, "notifications"),
        ]
    ),
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

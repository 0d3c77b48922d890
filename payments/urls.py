from fintech.routing import api_routes
from payments import api

# `payments` itself (create and list) is mounted by the project's URL conf, with the read model's list.
urlpatterns = api_routes(
    [
        ("payments/<str:payment_id>/authorize", api.PaymentAuthorizeApi, "payment-authorize"),
        ("payments/<str:payment_id>/capture", api.PaymentCaptureApi, "payment-capture"),
        ("payments/<str:payment_id>/refunds", api.PaymentRefundApi, "payment-refund"),
        ("payments/<str:payment_id>/cancel", api.PaymentCancelApi, "payment-cancel"),
        ("payments/<str:payment_id>/events", api.PaymentEventListApi, "payment-events"),
    ]
)

from django.urls import re_path

from payments import api

ID = r"(?P<payment_id>[^/]+)"

# Paths answer with or without a trailing slash: clients of a payments API should not trip on one.
urlpatterns = [
    re_path(r"^payments/?$", api.PaymentCreateApi.as_view(), name="payment-create"),
    re_path(rf"^payments/{ID}/authorize/?$", api.PaymentAuthorizeApi.as_view(), name="payment-authorize"),
    re_path(rf"^payments/{ID}/capture/?$", api.PaymentCaptureApi.as_view(), name="payment-capture"),
    re_path(rf"^payments/{ID}/refunds/?$", api.PaymentRefundApi.as_view(), name="payment-refund"),
    re_path(rf"^payments/{ID}/cancel/?$", api.PaymentCancelApi.as_view(), name="payment-cancel"),
    re_path(rf"^payments/{ID}/events/?$", api.PaymentEventListApi.as_view(), name="payment-events"),
]

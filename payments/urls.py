from django.urls import path

from payments import api
from projections.api import PaymentDetailApi, PaymentListApi


class PaymentCollectionApi(api.PaymentCreateApi, PaymentListApi):
    """One URL, two sides: POST creates a payment (write side), GET lists them (read model)."""


ROUTES = [
    ("payments", PaymentCollectionApi, "payment-create"),
    ("payments/<str:payment_id>", PaymentDetailApi, "payment-detail"),
    ("payments/<str:payment_id>/authorize", api.PaymentAuthorizeApi, "payment-authorize"),
    ("payments/<str:payment_id>/capture", api.PaymentCaptureApi, "payment-capture"),
    ("payments/<str:payment_id>/refunds", api.PaymentRefundApi, "payment-refund"),
    ("payments/<str:payment_id>/cancel", api.PaymentCancelApi, "payment-cancel"),
    ("payments/<str:payment_id>/events", api.PaymentEventListApi, "payment-events"),
]

# The contract's paths have no trailing slash; the slashed twins keep clients that add one working (and stay
# out of the schema, see fintech.api.drop_slashed_twins).
urlpatterns = [path(route, view.as_view(), name=name) for route, view, name in ROUTES] + [
    path(f"{route}/", view.as_view()) for route, view, _ in ROUTES
]

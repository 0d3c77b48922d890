from fintech.routing import api_routes
from projections.api import PaymentDetailApi

urlpatterns = api_routes([("payments/<str:payment_id>", PaymentDetailApi, "payment-detail")])

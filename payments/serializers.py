from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from fintech.api import MoneyField


class PaymentMethodOutputSerializer(serializers.Serializer):
    token = serializers.CharField()
    brand = serializers.CharField()
    last4 = serializers.CharField()


class PaymentOutputSerializer(serializers.Serializer):
    """A payment as its command responses show it (built from the aggregate just saved)."""

    id = serializers.UUIDField()
    status = serializers.CharField()
    amount = MoneyField()
    version = serializers.IntegerField()
    merchant_id = serializers.CharField()
    description = serializers.CharField()
    payment_method = PaymentMethodOutputSerializer()
    authorization_code = serializers.CharField(allow_null=True)
    failure_code = serializers.CharField(allow_null=True)
    authorized_amount = MoneyField()
    captured_amount = MoneyField()
    refunded_amount = MoneyField()
    created_at = serializers.DateTimeField()


class EventOutputSerializer(serializers.Serializer):
    event_id = serializers.UUIDField()
    event_type = serializers.CharField()
    version = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    data = serializers.SerializerMethodField()
    metadata = serializers.JSONField()

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_data(self, recorded) -> dict:
        return recorded.event.to_data()

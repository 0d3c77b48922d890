from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from fintech.api import MoneyField
from payments.domain import STATUSES


class PaymentMethodOutputSerializer(serializers.Serializer):
    token = serializers.CharField()
    brand = serializers.CharField()
    last4 = serializers.CharField()


class PaymentOutputSerializer(serializers.Serializer):
    """A payment as its command responses show it (built from the aggregate just saved)."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=STATUSES)
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


class PaymentDocumentSerializer(PaymentOutputSerializer):
    """A payment as the read model answers it (projections.selectors.payment_document): the command responses'
    fields and the time of each step."""

    class Meta:
        ref_name = "PaymentDocument"

    authorized_at = serializers.DateTimeField(allow_null=True)
    captured_at = serializers.DateTimeField(allow_null=True)
    refunded_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)


class FreshnessSerializer(serializers.Serializer):
    read_model_version = serializers.IntegerField()
    projection_checkpoint_at = serializers.DateTimeField(allow_null=True)
    source = serializers.ChoiceField(choices=["cache", "table"])


class PaymentDetailOutputSerializer(PaymentDocumentSerializer):
    class Meta:
        ref_name = "PaymentDetail"

    freshness = FreshnessSerializer()


class PaymentListOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "PaymentList"

    results = PaymentDocumentSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    projection_checkpoint_at = serializers.DateTimeField(allow_null=True)
    as_of = serializers.DateTimeField()


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

"""The read side of the payments API: the payment read model, from Redis or its table."""

import datetime as dt

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from fintech.api import MerchantApi
from payments.domain import STATUSES
from payments.serializers import PaymentDetailOutputSerializer, PaymentListOutputSerializer
from projections import selectors


def _freshness(document: dict, source: str) -> dict:
    return {
        "read_model_version": document["version"],
        "projection_checkpoint_at": selectors.projection_checkpoint_at(),
        "source": source,
    }


class PaymentDetailApi(MerchantApi):
    @extend_schema(operation_id="payments_retrieve", responses={200: PaymentDetailOutputSerializer})
    def get(self, request, **kwargs):
        found = selectors.payment_get(payment_id=self.payment_id(), merchant_id=self.merchant_id())
        if found is None:
            raise NotFound("no such payment (or not projected yet)")
        document, source = found
        freshness = _freshness(document, source)
        return Response(
            {**document, "freshness": freshness},
            headers={
                "ETag": f'"{document["version"]}"',
                "X-Read-Model-Version": str(document["version"]),
                "X-Projection-Checkpoint-At": freshness["projection_checkpoint_at"] or "",
            },
        )


class PaymentListApi(MerchantApi):
    """The caller's merchant's payments, newest first, from the read model."""

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PaymentListFilters"

        status = serializers.ChoiceField(choices=STATUSES, required=False)
        created_from = serializers.DateTimeField(required=False)
        created_to = serializers.DateTimeField(required=False)
        amount_min = serializers.IntegerField(required=False, min_value=0)
        amount_max = serializers.IntegerField(required=False, min_value=0)
        currency = serializers.RegexField(r"^[A-Z]{3}$", required=False)
        cursor = serializers.CharField(
            required=False, max_length=200, help_text="opaque: the next_cursor of the previous page, nothing else"
        )
        limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)

    @extend_schema(
        operation_id="payments_list",
        parameters=[FilterSerializer],
        responses={200: PaymentListOutputSerializer},
    )
    def get(self, request, **kwargs):
        serializer = self.FilterSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        filters = selectors.PaymentFilters(
            status=data.get("status"),
            created_from=data.get("created_from"),
            created_to=data.get("created_to"),
            amount_min=data.get("amount_min"),
            amount_max=data.get("amount_max"),
            currency=data.get("currency"),
        )
        try:
            results, next_cursor = selectors.payment_list(
                merchant_id=self.merchant_id(), filters=filters, cursor=data.get("cursor"), limit=data["limit"]
            )
        except (ValueError, TypeError):
            raise ValidationError({"cursor": ["not a cursor this API handed out"]}) from None
        return Response(
            {
                "results": results,
                "next_cursor": next_cursor,
                "projection_checkpoint_at": selectors.projection_checkpoint_at(),
                "as_of": dt.datetime.now(dt.UTC).isoformat(),
            }
        )

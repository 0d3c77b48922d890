"""The read side of the payments API: the payment read model, from Redis or its table."""

import datetime as dt
import json
import uuid

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from accounts import fastread
from accounts.fastread import FastReadView
from fintech.api import MerchantApi
from payments.domain import STATUSES
from payments.serializers import PaymentDetailOutputSerializer, PaymentListOutputSerializer
from projections import cache, selectors
from projections.payments import PAYMENTS


def _payment_answer(document: dict, source: str, checkpoint_at: str | None) -> tuple[dict, dict[str, str]]:
    """The body and headers of a payment's answer."""
    freshness = {"read_model_version": document["version"], "projection_checkpoint_at": checkpoint_at, "source": source}
    headers = {
        "ETag": f'"{document["version"]}"',
        "X-Read-Model-Version": str(document["version"]),
        "X-Projection-Checkpoint-At": checkpoint_at or "",
    }
    return {**document, "freshness": freshness}, headers


class PaymentDetailApi(FastReadView, MerchantApi):
    def fast_get(self, request, payment_id: str = "", **kwargs):
        try:
            key = cache.payment_key(uuid.UUID(payment_id))
        except ValueError:
            return None
        admitted = fastread.admit(request, [(key, fastread.GET), (cache.checkpoint_key(PAYMENTS), fastread.GET)])
        if admitted is None or admitted.principal.merchant_id is None:
            return None
        cached, checkpoint_at = admitted.documents
        if cached is None or checkpoint_at is None:
            return None
        document = json.loads(cached)
        if document["merchant_id"] != admitted.principal.merchant_id:
            return None  # DRF's path answers the 404
        return fastread.json_response(self, *_payment_answer(document, "cache", checkpoint_at.decode()))

    @extend_schema(operation_id="payments_retrieve", responses={200: PaymentDetailOutputSerializer})
    def get(self, request, **kwargs):
        # The checkpoint first: the document read after it is at least as fresh as it says.
        checkpoint_at = selectors.projection_checkpoint_at()
        found = selectors.payment_get(payment_id=self.payment_id(), merchant_id=self.merchant_id())
        if found is None:
            raise NotFound("no such payment (or not projected yet)")
        document, source = found
        body, headers = _payment_answer(document, source, checkpoint_at)
        return Response(body, headers=headers)


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
        checkpoint_at = selectors.projection_checkpoint_at()
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
                "projection_checkpoint_at": checkpoint_at,
                "as_of": dt.datetime.now(dt.UTC).isoformat(),
            }
        )

"""Thin DRF views of the payment commands: parse, call a service, render. One view per operation."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from fintech.api import (
    FreeTextField,
    MerchantApi,
    MoneyField,
    etag,
    expected_version_from,
    idempotent,
    no_card_numbers,
    register_problem,
)
from fintech.eventstore import ConcurrencyConflict, PreconditionFailed
from fintech.openapi import raises
from payments import services
from payments.domain import AmountTooLarge, InvalidAmount, InvalidTransition, PaymentError, check_amount_limit
from payments.gateway import AcquirerUnavailable
from payments.selectors import payment_event_list
from payments.serializers import EventOutputSerializer, PaymentOutputSerializer

register_problem(InvalidTransition, status.HTTP_409_CONFLICT)
register_problem(InvalidAmount, status.HTTP_400_BAD_REQUEST)
register_problem(AmountTooLarge, status.HTTP_400_BAD_REQUEST)
register_problem(services.UnknownPaymentMethod, status.HTTP_400_BAD_REQUEST)
register_problem(services.PaymentNotFound, status.HTTP_404_NOT_FOUND)
register_problem(AcquirerUnavailable, status.HTTP_502_BAD_GATEWAY)
register_problem(PaymentError, status.HTTP_400_BAD_REQUEST)


class PaymentApi(MerchantApi):
    """A payment command's view: answers with the payment and its version as ETag."""

    def payment_response(self, payment, http_status=status.HTTP_200_OK) -> Response:
        return Response(
            PaymentOutputSerializer(payment).data, status=http_status, headers={"ETag": etag(payment.version)}
        )


def payment_amount_bound(amount) -> None:
    """MoneyField validator: 400 `amount_too_large` above PAYMENTS_MAX_AMOUNT before the token is looked up
    (Payment.initiate checks the same limit)."""
    check_amount_limit(amount, max_major=settings.PAYMENTS_MAX_AMOUNT)


class PaymentCreateApi(PaymentApi):
    """Start a payment for the caller's merchant, paid with one of its vault tokens (write side)."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PaymentCreateInput"

        class PaymentMethodSerializer(serializers.Serializer):
            class Meta:
                ref_name = "PaymentMethodInput"

            # A card number sent here by mistake is refused before it can reach an event or a log.
            token = serializers.CharField(max_length=80, validators=[no_card_numbers])

        amount = MoneyField(positive=True, validators=[payment_amount_bound])
        payment_method = PaymentMethodSerializer()
        description = FreeTextField(max_length=500)

    @extend_schema(request=InputSerializer, responses={201: PaymentOutputSerializer})
    @raises(InvalidAmount, AmountTooLarge, services.UnknownPaymentMethod)
    @idempotent
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        payment = services.payment_initiate(
            merchant_id=self.merchant_id(),
            amount=data["amount"],
            payment_method_token=data["payment_method"]["token"],
            description=data["description"],
            actor=self.actor(),
        )
        response = self.payment_response(payment, status.HTTP_201_CREATED)
        response["Location"] = f"/api/v1/payments/{payment.id}"
        return response


class PaymentAuthorizeApi(PaymentApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PaymentAuthorizeInput"

    @extend_schema(request=InputSerializer, responses={200: PaymentOutputSerializer})
    @raises(InvalidTransition, ConcurrencyConflict, PreconditionFailed, AcquirerUnavailable)
    @idempotent
    def post(self, request, **kwargs):
        self.InputSerializer(data=request.data).is_valid(raise_exception=True)
        payment = services.payment_authorize(
            payment_id=self.payment_id(),
            merchant_id=self.merchant_id(),
            expected_version=expected_version_from(request),
            actor=self.actor(),
        )
        return self.payment_response(payment)


class PaymentCaptureApi(PaymentApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PaymentCaptureInput"

        amount = MoneyField(positive=True, required=False)

    @extend_schema(request=InputSerializer, responses={200: PaymentOutputSerializer})
    @raises(InvalidAmount, InvalidTransition, ConcurrencyConflict, PreconditionFailed)
    @idempotent
    def post(self, request, **kwargs):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payment = services.payment_capture(
            payment_id=self.payment_id(),
            amount=serializer.validated_data.get("amount"),
            merchant_id=self.merchant_id(),
            expected_version=expected_version_from(request),
            actor=self.actor(),
        )
        return self.payment_response(payment)


class PaymentRefundApi(PaymentApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PaymentRefundInput"

        amount = MoneyField(positive=True)
        reason = FreeTextField(max_length=500)

    @extend_schema(request=InputSerializer, responses={200: PaymentOutputSerializer})
    @raises(InvalidAmount, InvalidTransition, ConcurrencyConflict, PreconditionFailed)
    @idempotent
    def post(self, request, **kwargs):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payment = services.payment_refund(
            payment_id=self.payment_id(),
            amount=serializer.validated_data["amount"],
            reason=serializer.validated_data["reason"],
            merchant_id=self.merchant_id(),
            expected_version=expected_version_from(request),
            actor=self.actor(),
        )
        return self.payment_response(payment)


class PaymentCancelApi(PaymentApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PaymentCancelInput"

        reason = FreeTextField(max_length=500)

    @extend_schema(request=InputSerializer, responses={200: PaymentOutputSerializer})
    @raises(InvalidTransition, ConcurrencyConflict, PreconditionFailed)
    @idempotent
    def post(self, request, **kwargs):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payment = services.payment_cancel(
            payment_id=self.payment_id(),
            reason=serializer.validated_data["reason"],
            merchant_id=self.merchant_id(),
            expected_version=expected_version_from(request),
            actor=self.actor(),
        )
        return self.payment_response(payment)


class PaymentEventListApi(PaymentApi):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PaymentEventListOutput"

        results = EventOutputSerializer(many=True)

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request, **kwargs):
        events = payment_event_list(payment_id=self.payment_id(), merchant_id=self.merchant_id())
        return Response(
            {"results": EventOutputSerializer(events, many=True).data},
            headers={"ETag": etag(events[-1].version)},
        )

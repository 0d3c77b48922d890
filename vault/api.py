"""Thin views of the vault. Neither a response nor an error ever carries a card number, except the CDE's
detokenise answer, which is never stored (no idempotency record, no cache)."""

import tink
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from fintech import policy
from fintech.api import ServiceValidatedField, idempotent, no_card_numbers, register_problem
from fintech.openapi import raises
from fintech.throttling import DetokenizeRateThrottle
from vault import services
from vault.domain import DetokenizationDenied, InvalidCard, TokenNotFound
from vault.keys import VaultKeyError

register_problem(InvalidCard, status.HTTP_400_BAD_REQUEST)
register_problem(TokenNotFound, status.HTTP_404_NOT_FOUND)
register_problem(DetokenizationDenied, status.HTTP_403_FORBIDDEN)
# A record that fails authentication (tampered, swapped, or its key retired) is an integrity incident.
register_problem(tink.TinkError, status.HTTP_500_INTERNAL_SERVER_ERROR, "vault_integrity_error")
register_problem(VaultKeyError, status.HTTP_500_INTERNAL_SERVER_ERROR, "vault_integrity_error")


class CardOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "VaultCard"

    token = serializers.CharField()
    brand = serializers.CharField()
    last4 = serializers.CharField()
    masked = serializers.CharField()
    exp_month = serializers.IntegerField()
    exp_year = serializers.IntegerField()


class TokenCreateApi(APIView):
    """Tokenise a card for the caller's merchant (what a merchant's checkout page does)."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "VaultTokenCreateInput"

        # Validated by the vault itself, whose messages never repeat the number; DRF's would (max_length).
        card_number = ServiceValidatedField(
            schema={
                "type": "string",
                "pattern": "^[ -]*([0-9][ -]*){12,19}$",
                "description": "12 to 19 digits passing the Luhn check; spaces and dashes are ignored",
            }
        )
        exp_month = ServiceValidatedField(schema={"type": "integer", "minimum": 1, "maximum": 12})
        exp_year = ServiceValidatedField(
            schema={
                "type": "integer",
                "minimum": 0,
                "maximum": 9999,
                "description": "2 or 4 digits; the card must not have expired nor expire more than 50 years ahead",
            }
        )
        cardholder_name = serializers.CharField(
            max_length=200, required=False, allow_null=True, default=None, validators=[no_card_numbers]
        )

    @extend_schema(request=InputSerializer, responses={201: CardOutputSerializer})
    @raises(InvalidCard)
    @idempotent
    def post(self, request):
        merchant_id = policy.merchant_of(request.user)
        if merchant_id is None:
            raise PermissionDenied("this user does not act for a merchant")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        card = services.card_tokenize(
            card_number=data["card_number"],
            exp_month=data["exp_month"],
            exp_year=data["exp_year"],
            cardholder_name=data["cardholder_name"],
            merchant_id=merchant_id,
        )
        return Response(CardOutputSerializer(card).data, status=status.HTTP_201_CREATED)


class TokenDetokenizeApi(APIView):
    """The card number behind a token, for the CDE role only; every attempt is audited. Rate-limited far more
    strictly than the rest of the API."""

    throttle_classes = [*APIView.throttle_classes, DetokenizeRateThrottle]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "VaultDetokenizeInput"

        purpose = serializers.CharField(max_length=500, validators=[no_card_numbers])

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "VaultDetokenizeOutput"

        card_number = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    @raises(DetokenizationDenied, TokenNotFound)
    def post(self, request, token):
        serializer = self.InputSerializer(data=request.data)
        valid = serializer.is_valid()
        # Refusal comes first, and is audited even when the request is malformed.
        if not valid and policy.may_detokenize(request.user):
            raise serializers.ValidationError(serializer.errors)
        number = services.card_detokenize(
            token=token, purpose=serializer.validated_data["purpose"] if valid else "", actor=request.user
        )
        return Response({"card_number": number}, headers={"Cache-Control": "no-store"})

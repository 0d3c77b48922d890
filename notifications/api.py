"""Thin views of the merchant's webhook endpoints: a merchant sees and changes only its own."""

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from fintech.api import MerchantApi, register_problem
from notifications import selectors, services
from notifications.domain import (
    ENDPOINTS_PER_MERCHANT,
    TYPES,
    URL_MAX_LENGTH,
    URL_PATTERN,
    InvalidWebhookEndpoint,
    WebhookEndpointLimit,
    WebhookEndpointNotFound,
)

register_problem(InvalidWebhookEndpoint, status.HTTP_400_BAD_REQUEST, "invalid_webhook_endpoint")
register_problem(WebhookEndpointLimit, status.HTTP_409_CONFLICT, "too_many_webhook_endpoints")
register_problem(WebhookEndpointNotFound, status.HTTP_404_NOT_FOUND, "not_found")


class EndpointOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "WebhookEndpoint"

    id = serializers.UUIDField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()


class EndpointCreatedOutputSerializer(EndpointOutputSerializer):
    class Meta:
        ref_name = "WebhookEndpointCreated"

    secret = serializers.CharField(help_text="the signing secret, shown in this answer only: keep it")


class EndpointListOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "WebhookEndpointList"

    results = EndpointOutputSerializer(many=True)


class WebhookEndpointApi(MerchantApi):
    def endpoint_id(self) -> uuid.UUID:
        try:
            return uuid.UUID(self.kwargs["endpoint_id"])
        except ValueError:
            raise NotFound("no such webhook endpoint") from None


class WebhookEndpointCreateApi(WebhookEndpointApi):
    """Register a URL for the caller's merchant's notifications of the chosen types. The answer holds the signing
    secret, once."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "WebhookEndpointCreateInput"

        url = serializers.RegexField(
            URL_PATTERN,
            max_length=URL_MAX_LENGTH,
            help_text="https (http and local hosts outside production only); an ASCII host name (punycode for others), "
            "no credentials, no fragment; in production the host must resolve to public addresses only",
        )
        events = serializers.ListField(
            child=serializers.ChoiceField(choices=TYPES), min_length=1, max_length=len(TYPES) * 4
        )

    @extend_schema(
        operation_id="webhook_endpoints_create",
        request=InputSerializer,
        responses={201: EndpointCreatedOutputSerializer},
        description=f"At most {ENDPOINTS_PER_MERCHANT} endpoints per merchant (409 past that).",
    )
    def post(self, request, **kwargs):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = services.webhook_endpoint_create(
            merchant_id=self.merchant_id(),
            url=serializer.validated_data["url"],
            events=serializer.validated_data["events"],
            actor=self.actor(),
        )
        body = {**EndpointOutputSerializer(created.endpoint).data, "secret": created.secret}
        response = Response(body, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response


class WebhookEndpointListApi(WebhookEndpointApi):
    @extend_schema(operation_id="webhook_endpoints_list", responses={200: EndpointListOutputSerializer})
    def get(self, request, **kwargs):
        endpoints = selectors.webhook_endpoint_list(merchant_id=self.merchant_id())
        return Response({"results": EndpointOutputSerializer(endpoints, many=True).data})


class WebhookEndpointDetailApi(WebhookEndpointApi):
    @extend_schema(operation_id="webhook_endpoints_retrieve", responses={200: EndpointOutputSerializer})
    def get(self, request, **kwargs):
        endpoint = selectors.webhook_endpoint_get(merchant_id=self.merchant_id(), endpoint_id=self.endpoint_id())
        return Response(EndpointOutputSerializer(endpoint).data)


class WebhookEndpointDeleteApi(WebhookEndpointApi):
    @extend_schema(operation_id="webhook_endpoints_destroy", responses={204: None})
    def delete(self, request, **kwargs):
        services.webhook_endpoint_delete(merchant_id=self.merchant_id(), endpoint_id=self.endpoint_id())
        return Response(status=status.HTTP_204_NO_CONTENT)

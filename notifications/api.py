"""Thin views of the merchant's webhook endpoints, their deliveries and the notification inbox: a merchant sees
and changes only its own."""

import uuid

import redis
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from fintech.api import MerchantApi, path_uuid, register_problem
from notifications import inbox, selectors, services
from notifications.domain import (
    ENDPOINTS_PER_MERCHANT,
    TYPES,
    URL_MAX_LENGTH,
    URL_PATTERN,
    InboxUnavailable,
    InvalidWebhookEndpoint,
    WebhookDeliveryNotFound,
    WebhookEndpointLimit,
    WebhookEndpointNotFound,
)

register_problem(InvalidWebhookEndpoint, status.HTTP_400_BAD_REQUEST, "invalid_webhook_endpoint")
register_problem(WebhookEndpointLimit, status.HTTP_409_CONFLICT, "too_many_webhook_endpoints")
register_problem(WebhookEndpointNotFound, status.HTTP_404_NOT_FOUND, "not_found")
register_problem(WebhookDeliveryNotFound, status.HTTP_404_NOT_FOUND, "not_found")
register_problem(InboxUnavailable, status.HTTP_503_SERVICE_UNAVAILABLE, "service_unavailable")


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
        return path_uuid(self.kwargs["endpoint_id"], what="webhook endpoint")


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


class DeliveryOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "WebhookDelivery"

    id = serializers.UUIDField()
    endpoint_id = serializers.UUIDField()
    notification_id = serializers.UUIDField(help_text="the notification's id (its event's): what receivers dedupe on")
    type = serializers.CharField()
    payment_id = serializers.UUIDField()
    payment_version = serializers.IntegerField()
    state = serializers.ChoiceField(choices=["pending", "delivered", "failed"])
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    next_attempt_at = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_next_attempt_at(self, delivery):
        # Only a pending delivery has a next attempt.
        if delivery.state != "pending":
            return None
        return serializers.DateTimeField().to_representation(delivery.next_attempt_at)


class DeliveryListOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "WebhookDeliveryList"

    results = DeliveryOutputSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class WebhookDeliveryListApi(WebhookEndpointApi):
    """An endpoint's deliveries, newest first: attempts, the last answer, the next retry."""

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "WebhookDeliveryFilters"

        cursor = serializers.CharField(required=False, max_length=200)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)

    @extend_schema(
        operation_id="webhook_deliveries_list",
        parameters=[FilterSerializer],
        responses={200: DeliveryListOutputSerializer},
    )
    def get(self, request, **kwargs):
        serializer = self.FilterSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        try:
            deliveries, next_cursor = selectors.webhook_delivery_list(
                merchant_id=self.merchant_id(),
                endpoint_id=self.endpoint_id(),
                cursor=serializer.validated_data.get("cursor"),
                limit=serializer.validated_data["limit"],
            )
        except ValueError:
            raise ValidationError({"cursor": ["not a cursor this API handed out"]}) from None
        return Response({"results": DeliveryOutputSerializer(deliveries, many=True).data, "next_cursor": next_cursor})


class WebhookDeliveryRetryApi(MerchantApi):
    """Send one of the caller's deliveries again now (a failed one gets a new round of attempts)."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "WebhookDeliveryRetryInput"

    @extend_schema(
        operation_id="webhook_deliveries_retry", request=InputSerializer, responses={202: DeliveryOutputSerializer}
    )
    def post(self, request, delivery_id: str = "", **kwargs):
        # The body (none, or an empty object) is read first: a hostile one is a 400 whatever the id.
        self.InputSerializer(data=request.data).is_valid(raise_exception=True)
        delivery = services.webhook_delivery_retry(
            merchant_id=self.merchant_id(), delivery_id=path_uuid(delivery_id, what="webhook delivery")
        )
        return Response(DeliveryOutputSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class NotificationListOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "NotificationList"

    results = serializers.ListField(child=serializers.DictField(), help_text="{id, type, created_at, data}")
    next_cursor = serializers.CharField(allow_null=True)


class NotificationListApi(MerchantApi):
    """The caller's merchant's latest notifications, newest first, from the inbox (Redis, kept
    NOTIFICATION_INBOX_DAYS): what its webhooks would carry, for a merchant that polls."""

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "NotificationFilters"

        cursor = serializers.RegexField(r"^[0-9]{1,18}$", required=False, help_text="the next_cursor of the last page")
        limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)

    @extend_schema(
        operation_id="notifications_list",
        parameters=[FilterSerializer],
        responses={200: NotificationListOutputSerializer},
    )
    def get(self, request, **kwargs):
        serializer = self.FilterSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        cursor = serializer.validated_data.get("cursor")
        try:
            notifications, next_cursor = inbox.inbox_page(
                merchant_id=self.merchant_id(),
                before=int(cursor) if cursor else None,
                limit=serializer.validated_data["limit"],
            )
        except redis.RedisError:
            raise InboxUnavailable("the notification inbox is unavailable; try again shortly") from None
        return Response({"results": notifications, "next_cursor": str(next_cursor) if next_cursor else None})

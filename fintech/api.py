"""What every API of the project shares: problem+json errors, money fields, If-Match, Idempotency-Key."""

from __future__ import annotations

import functools
import json
import logging
import re
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from django.db import InterfaceError, OperationalError, transaction
from django.http import Http404
from django.utils.module_loading import import_string
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from fintech import policy
from fintech.db import advisory_xact_lock
from fintech.eventstore import ConcurrencyConflict, PreconditionFailed
from fintech.masking import mask_pans, mask_value
from fintech.models import IdempotencyRecord
from fintech.money import CURRENCY_EXPONENTS, MAX_MINOR, Money, MoneyError
from fintech.services import idempotency_expired_before

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"


# errors ---------------------------------------------------------------------------------------------------
class IdempotencyKeyReused(Exception):
    code = "idempotency_key_reused"


_PROBLEMS: dict[type[Exception], tuple[int, str]] = {
    ConcurrencyConflict: (status.HTTP_409_CONFLICT, "concurrency_conflict"),
    PreconditionFailed: (status.HTTP_412_PRECONDITION_FAILED, PreconditionFailed.code),
    IdempotencyKeyReused: (status.HTTP_422_UNPROCESSABLE_ENTITY, IdempotencyKeyReused.code),
    MoneyError: (status.HTTP_400_BAD_REQUEST, "invalid_money"),
}

_DRF_CODES = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "parse_error",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.Throttled: "throttled",
}


def register_problem(exception_class: type[Exception], http_status: int, code: str | None = None) -> None:
    """Map a domain exception to an HTTP status; its stable code is `code` or the class's `code`."""
    _PROBLEMS[exception_class] = (http_status, code or exception_class.code)


def problem_status_code(exception_class: type[Exception]) -> tuple[int, str] | None:
    """The HTTP status and stable code a domain exception is answered with; None for one not registered."""
    return next((_PROBLEMS[cls] for cls in exception_class.__mro__ if cls in _PROBLEMS), None)


def problem(http_status: int, code: str, detail: str, **extra) -> Response:
    """An application/problem+json answer. Whatever a client sent is masked: an error never echoes a card
    number."""
    body = {
        "type": f"urn:fintech:problem:{code}",
        "title": code.replace("_", " ").capitalize(),
        "status": http_status,
        "code": code,
        "detail": detail,
        **extra,
    }
    return Response(mask_value(body), status=http_status, content_type=PROBLEM_CONTENT_TYPE)


# The database is unreachable, restarting, or dropped the connection (also a deadlock or a cancelled statement,
# all worth a retry): the client is told to come back, never given a bare 500. Whether a command that was
# running committed is unknown to it, which is what its Idempotency-Key is for.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 2


def _unavailable(exc: Exception) -> Response:
    logger.warning("database unavailable, answered 503: %s", exc)
    response = problem(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "service_unavailable",
        "the service cannot reach its database right now; retry later (a command with its Idempotency-Key is safe "
        "to retry: it replays what committed or runs once)",
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def problem_exception_handler(exc, context):
    """The one place exceptions become HTTP answers: application/problem+json with a stable `code`."""
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return _unavailable(exc)
    known = problem_status_code(type(exc))
    if known is not None:
        return problem(*known, str(exc))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        result = problem(response.status_code, code, "the request is not valid", errors=response.data)
    else:
        result = problem(response.status_code, code, str(getattr(exc, "detail", exc)))
    for header in ("WWW-Authenticate", "Retry-After", "Allow"):
        if header in response:
            result[header] = response[header]
    return result


# money ----------------------------------------------------------------------------------------------------
class MoneyField(serializers.Field):
    """`{"amount": <int minor units>, "currency": "JPY"}`; floats, strings, NaN, extra fields and unknown
    currencies fail. `positive=True` documents that the command refuses an amount that is not positive: its
    domain does, with its own stable code (invalid_amount, invalid_request), so the field leaves it to it."""

    default_error_messages = {"invalid": "{message}"}

    def __init__(self, *, positive: bool = False, **kwargs):
        self.positive = positive
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> Money:
        try:
            return Money.from_json(data)
        except MoneyError as error:
            self.fail("invalid", message=str(error))

    def to_representation(self, value: Money) -> dict:
        return value.to_json()


def money_schema(*, positive: bool = False) -> dict:
    """The JSON schema of Money, saying what Money.from_json enforces (the currency is the Currency component)."""
    return {
        "type": "object",
        "properties": {
            "amount": {
                "type": "integer",
                "minimum": 1 if positive else -MAX_MINOR,
                "maximum": MAX_MINOR,
                "description": "minor units of the currency (JPY 0, USD 2, KWD 3 digits)",
            },
            "currency": {"$ref": "#/components/schemas/Currency"},
        },
        "required": ["amount", "currency"],
        "additionalProperties": False,
        "example": {"amount": 5000, "currency": "JPY"},
    }


class MoneyFieldSchema(OpenApiSerializerFieldExtension):
    """Money as the `Money` component, or `PositiveMoney` for a command's amount; both use `Currency`."""

    target_class = MoneyField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        positive = self.target.positive and direction == "request"
        codes = {"type": "string", "enum": sorted(CURRENCY_EXPONENTS), "description": "ISO 4217 code"}
        currency = ResolvedComponent(name="Currency", type=ResolvedComponent.SCHEMA, object="Currency", schema=codes)
        money = ResolvedComponent(
            name="PositiveMoney" if positive else "Money",
            type=ResolvedComponent.SCHEMA,
            object="PositiveMoney" if positive else "Money",
            schema=money_schema(positive=positive),
        )
        for component in (currency, money):
            auto_schema.registry.register_on_missing(component)
        return money.ref


# text -----------------------------------------------------------------------------------------------------
def no_card_numbers(value: str) -> str:
    """Validator for free text that ends up in events (descriptions, reasons): card numbers go to the vault.
    Django's ValidationError, so API serializers and admin forms share it; a number written with any
    separators (dots, slashes, several spaces...) is one too (`fintech.masking.mask_pans`)."""
    if isinstance(value, str) and mask_pans(value) != value:
        raise DjangoValidationError("must not contain a card number; tokenise cards with the vault", code="card_number")
    return value


class FreeTextField(serializers.CharField):
    """Optional free text that ends up in events (a description, a reason, a reference): blank by default, no
    card number. Like every CharField it refuses NUL (PostgreSQL text cannot hold it) and lone surrogates."""

    def __init__(self, *, max_length: int, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("default", "")
        super().__init__(max_length=max_length, validators=[no_card_numbers, *kwargs.pop("validators", [])], **kwargs)


class ServiceValidatedField(serializers.JSONField):
    """A value handed to the service as sent, for it to validate -- the vault, whose messages never repeat a card
    number (DRF's would). `schema` documents what the service accepts."""

    def __init__(self, *, schema: dict, **kwargs):
        self.schema = schema
        super().__init__(**kwargs)


class ServiceValidatedFieldSchema(OpenApiSerializerFieldExtension):
    target_class = ServiceValidatedField

    def map_serializer_field(self, auto_schema, direction):
        return self.target.schema


# What DRF's CharField enforces on every text input, in JSON schema: no NUL anywhere (PostgreSQL text cannot hold
# it), and -- surrounding whitespace being trimmed before the blank check -- some other character where blank is
# refused. Blank-allowed text says "no NUL" with `not` rather than a pattern, which drf-spectacular would wrap in
# a oneOf that refuses the empty string.
NON_BLANK_TEXT_PATTERN = r"^\s*[^\s\u0000][^\u0000]*$"
NO_NUL = {"not": {"pattern": r"\u0000"}}


class CharFieldSchema(OpenApiSerializerFieldExtension):
    """Every text input of the API documents the NUL and blank rules its CharField enforces."""

    target_class = serializers.CharField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        # A RegexField's own pattern is added after this mapping, and says more.
        patterned = any(isinstance(validator, RegexValidator) for validator in self.target.validators)
        plain_string = schema.get("type") == "string" and not {"pattern", "format", "enum"} & set(schema)
        if direction == "request" and plain_string and not patterned:
            if self.target.allow_blank:
                schema.update(NO_NUL)
            else:
                schema["pattern"] = NON_BLANK_TEXT_PATTERN
        return schema


# If-Match / ETag ------------------------------------------------------------------------------------------
_ETAG = re.compile(r'^(?:W/)?"?(\d{1,10})"?$')


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version_from(request) -> int | None:
    """The version an If-Match header pins, None when absent or `*`."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    match = _ETAG.match(header.strip())
    if not match:
        raise exceptions.ValidationError({"If-Match": ['must be an ETag such as "3"']})
    return int(match.group(1))


# Idempotency-Key ------------------------------------------------------------------------------------------
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_REPLAYED_HEADERS = ("ETag", "Location")


def _stored(response: Response) -> bool:
    # Outcomes worth replaying; a conflict, a failed precondition or a server error may go otherwise next time.
    return response.status_code < 500 and response.status_code not in (409, 412, 429)


def _fingerprint(request) -> str:
    # Keyed, and not under SECRET_KEY: a body may hold a card number whose BIN, last 4 and expiry the stored
    # response shows, so the key is the vault's, held under its KEK (settings.IDEMPOTENCY_FINGERPRINT).
    payload = json.dumps([request.method, request.path, request.data], sort_keys=True, default=str)
    return import_string(settings.IDEMPOTENCY_FINGERPRINT)(payload)


def _lookup(*, owner_id: int, key: str) -> IdempotencyRecord | None:
    """The stored outcome of this key, taking the key's lock first: a concurrent request with the same key
    waits here until the first one has committed its outcome, then replays it.

    An advisory lock rather than a placeholder row, so that the transaction gets no transaction id until the
    command itself writes: an authorization waiting on the acquirer must not hold the projections back.
    """
    advisory_xact_lock(f"idempotency:{owner_id}:{key}")
    expired = idempotency_expired_before()
    record = IdempotencyRecord.objects.filter(owner_id=owner_id, key=key).first()
    if record is not None and record.created_at < expired:
        record.delete()
        return None
    return record


def idempotent(view_method):
    """Honour `Idempotency-Key` on a POST: the first response is stored in the command's own transaction, so
    the effect and its record commit together; the same key and body replays it, another body gets 422."""

    @functools.wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view_method(self, request, *args, **kwargs)
        if not _KEY.match(key):
            raise exceptions.ValidationError({"Idempotency-Key": ["must be 1 to 255 printable ASCII characters"]})
        fingerprint = _fingerprint(request)
        with transaction.atomic():
            existing = _lookup(owner_id=request.user.pk, key=key)
            if existing is not None:
                if existing.fingerprint != fingerprint:
                    raise IdempotencyKeyReused("this Idempotency-Key was used with another request")
                headers = {**existing.response_headers, "Idempotent-Replayed": "true"}
                content_type = headers.pop("Content-Type", None)
                return Response(
                    existing.response_body,
                    status=existing.response_status,
                    headers=headers,
                    content_type=content_type,
                )
            try:
                response = view_method(self, request, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - turned into the response DRF would send, or re-raised
                response = self.handle_exception(exc)
            if _stored(response):
                headers = {name: response[name] for name in _REPLAYED_HEADERS if name in response}
                if response.content_type == PROBLEM_CONTENT_TYPE:
                    headers["Content-Type"] = PROBLEM_CONTENT_TYPE
                IdempotencyRecord.objects.create(
                    owner_id=request.user.pk,
                    key=key,
                    fingerprint=fingerprint,
                    response_status=response.status_code,
                    response_body=response.data,
                    response_headers=headers,
                )
            else:
                transaction.set_rollback(True)
            return response

    wrapper.idempotency_key = True  # documented by fintech.openapi: the header, and 422 idempotency_key_reused
    return wrapper


def drop_slashed_twins(endpoints):
    """drf-spectacular preprocessing hook: document each API path once, without its trailing-slash twin."""
    return [endpoint for endpoint in endpoints if not endpoint[0].endswith("/")]


def path_uuid(value: str, *, what: str) -> uuid.UUID:
    """An id from the URL path; one that is not a UUID is as absent as an unknown one: 404 "no such <what>"."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise exceptions.NotFound(f"no such {what}") from None


class MerchantApi(APIView):
    """A view acting for the caller's merchant (the access policy's merchant_of); a user who acts for none is
    refused. The write side's commands and the read model's queries of payments both start here."""

    def merchant_id(self) -> str:
        merchant_id = policy.merchant_of(self.request.user)
        if merchant_id is None:
            raise exceptions.PermissionDenied("this user does not act for a merchant")
        return merchant_id

    def payment_id(self) -> uuid.UUID:
        return path_uuid(self.kwargs["payment_id"], what="payment")

    def actor(self) -> str:
        return f"user:{self.request.user.pk}"

"""Thin DRF views of the ledger: accounts, deposits, transfers, holds, balances and postings.

Writes are for the finance role (the `finance` group, fintech.policy); a merchant's users read only their
merchant's accounts; everyone else is refused, staff and superusers included."""

from __future__ import annotations

import uuid

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import fastread
from accounts.fastread import FastReadView
from fintech import policy
from fintech.api import FreeTextField, MoneyField, idempotent, no_card_numbers, path_uuid, register_problem
from fintech.money import CURRENCY_EXPONENTS, MAX_MINOR, Money
from fintech.openapi import raises
from fintech.timestamps import iso_z
from ledger import selectors, services
from ledger.domain import (
    AccountExists,
    AccountKind,
    AccountNotFound,
    AmountTooLarge,
    BalanceOutOfRange,
    CurrencyMismatch,
    HoldClosed,
    HoldNotFound,
    InsufficientFunds,
    InvalidLedgerRequest,
    LedgerError,
    MovementNotAllowed,
    check_amount_limit,
)
from projections import cache as read_cache
from projections import selectors as read_models

register_problem(InsufficientFunds, status.HTTP_422_UNPROCESSABLE_ENTITY)
register_problem(MovementNotAllowed, status.HTTP_422_UNPROCESSABLE_ENTITY)
register_problem(BalanceOutOfRange, status.HTTP_422_UNPROCESSABLE_ENTITY)
register_problem(AmountTooLarge, status.HTTP_400_BAD_REQUEST)
register_problem(CurrencyMismatch, status.HTTP_400_BAD_REQUEST)
register_problem(InvalidLedgerRequest, status.HTTP_400_BAD_REQUEST)
register_problem(AccountNotFound, status.HTTP_404_NOT_FOUND)
register_problem(HoldNotFound, status.HTTP_404_NOT_FOUND)
register_problem(AccountExists, status.HTTP_409_CONFLICT)
register_problem(HoldClosed, status.HTTP_409_CONFLICT)
register_problem(LedgerError, status.HTTP_400_BAD_REQUEST)


# Row ids (postings) are bigserial: a cursor beyond it would reach PostgreSQL as an out-of-range parameter.
_BIGINT_MAX = 2**63 - 1


def ledger_amount_bound(amount: Money) -> None:
    """MoneyField validator: 400 `amount_too_large` above LEDGER_MAX_AMOUNT before anything is looked up (the
    service checks the same limit again in the domain)."""
    check_amount_limit(amount, max_major=settings.LEDGER_MAX_AMOUNT)


class LedgerApi(APIView):
    def require_finance(self) -> None:
        if not policy.may_move_money(self.request.user):
            raise PermissionDenied("the ledger is written by the finance role")

    def account_id(self) -> uuid.UUID:
        return path_uuid(self.kwargs["account_id"], what="account")

    def require_reader(self, owner: tuple[str, str] | None) -> None:
        """Finance reads every account, a merchant's users their merchant's; others see nothing."""
        if owner is None or not policy.may_read_ledger(self.request.user, owner=owner):
            raise NotFound("no such account")

    def actor(self) -> str:
        return f"user:{self.request.user.pk}"


class AccountOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    owner_type = serializers.CharField()
    owner_id = serializers.CharField()
    currency = serializers.CharField()
    kind = serializers.CharField()
    floor = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class AccountOpenApi(LedgerApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AccountOpenInput"

        owner_type = serializers.ChoiceField(choices=["customer", "merchant", "company"])
        owner_id = serializers.CharField(max_length=64, validators=[no_card_numbers])
        currency = serializers.ChoiceField(choices=sorted(CURRENCY_EXPONENTS))
        kind = serializers.ChoiceField(choices=[kind.value for kind in AccountKind])
        # A new account holds 0, so a floor above it could never be met (the table's check refuses it); below,
        # balances stay within what money can hold, so no floor beyond it means anything (nor fits a bigint).
        floor = serializers.IntegerField(required=False, allow_null=True, min_value=-MAX_MINOR, max_value=0)

    @extend_schema(request=InputSerializer, responses={201: AccountOutputSerializer})
    @raises(AccountExists, InvalidLedgerRequest)
    @idempotent
    def post(self, request):
        self.require_finance()
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account = services.account_open(**serializer.validated_data, actor=self.actor())
        response = Response(AccountOutputSerializer(account).data, status=status.HTTP_201_CREATED)
        response["Location"] = f"/api/v1/accounts/{account.id}"
        return response


class DepositOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    account = serializers.UUIDField()
    amount = MoneyField()
    reference = serializers.CharField()
    created_at = serializers.DateTimeField()


class AccountDepositApi(LedgerApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AccountDepositInput"

        amount = MoneyField(positive=True, validators=[ledger_amount_bound])
        reference = FreeTextField(max_length=200)

    @extend_schema(request=InputSerializer, responses={201: DepositOutputSerializer})
    @raises(CurrencyMismatch, InvalidLedgerRequest, MovementNotAllowed, AmountTooLarge, BalanceOutOfRange)
    @idempotent
    def post(self, request, **kwargs):
        self.require_finance()
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        account_id = self.account_id()
        entry = services.account_deposit(
            account_id=account_id, amount=data["amount"], reference=data["reference"], actor=self.actor()
        )
        return Response(
            {
                "id": str(entry.id),
                "status": "completed",
                "account": str(account_id),
                "amount": data["amount"].to_json(),
                "reference": data["reference"],
                "created_at": iso_z(entry.created_at),
            },
            status=status.HTTP_201_CREATED,
        )


class TransferOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    from_account = serializers.UUIDField(source="from_account_id")
    to_account = serializers.UUIDField(source="to_account_id")
    amount = serializers.SerializerMethodField()
    reference = serializers.CharField()
    created_at = serializers.DateTimeField()

    @extend_schema_field(MoneyField())
    def get_amount(self, transfer) -> dict:
        return {"amount": transfer.amount, "currency": transfer.currency}


class TransferCreateApi(LedgerApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "TransferCreateInput"

        from_account = serializers.UUIDField()
        to_account = serializers.UUIDField()
        amount = MoneyField(positive=True, validators=[ledger_amount_bound])
        reference = FreeTextField(max_length=200)

    @extend_schema(request=InputSerializer, responses={201: TransferOutputSerializer})
    @raises(
        AccountNotFound,
        InsufficientFunds,
        CurrencyMismatch,
        InvalidLedgerRequest,
        MovementNotAllowed,
        AmountTooLarge,
        BalanceOutOfRange,
    )
    @idempotent
    def post(self, request):
        self.require_finance()
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        transfer = services.transfer_create(**serializer.validated_data, actor=self.actor())
        response = Response(TransferOutputSerializer(transfer).data, status=status.HTTP_201_CREATED)
        response["Location"] = f"/api/v1/transfers/{transfer.id}"
        return response


class HoldOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    account = serializers.UUIDField(source="account_id")
    status = serializers.CharField()
    amount = serializers.SerializerMethodField()
    reference = serializers.CharField()
    created_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(MoneyField())
    def get_amount(self, hold) -> dict:
        return {"amount": hold.amount, "currency": hold.currency}


class HoldPlaceApi(LedgerApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "HoldPlaceInput"

        amount = MoneyField(positive=True, validators=[ledger_amount_bound])
        reference = FreeTextField(max_length=200)

    @extend_schema(request=InputSerializer, responses={201: HoldOutputSerializer})
    @raises(InsufficientFunds, CurrencyMismatch, InvalidLedgerRequest, MovementNotAllowed, AmountTooLarge)
    @idempotent
    def post(self, request, **kwargs):
        self.require_finance()
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        hold = services.hold_place(account_id=self.account_id(), **serializer.validated_data, actor=self.actor())
        return Response(HoldOutputSerializer(hold).data, status=status.HTTP_201_CREATED)


class HoldActionApi(LedgerApi):
    def hold_id(self) -> uuid.UUID:
        return path_uuid(self.kwargs["hold_id"], what="hold")


class HoldReleaseApi(HoldActionApi):
    @extend_schema(request=None, responses={200: HoldOutputSerializer})
    @raises(HoldClosed)
    @idempotent
    def post(self, request, **kwargs):
        self.require_finance()
        hold = services.hold_release(hold_id=self.hold_id(), actor=self.actor())
        return Response(HoldOutputSerializer(hold).data)


class HoldSettleApi(HoldActionApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "HoldSettleInput"

        to_account = serializers.UUIDField()

    @extend_schema(request=InputSerializer, responses={200: HoldOutputSerializer})
    @raises(HoldClosed, AccountNotFound, CurrencyMismatch, InvalidLedgerRequest, MovementNotAllowed, BalanceOutOfRange)
    @idempotent
    def post(self, request, **kwargs):
        self.require_finance()
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        hold = services.hold_settle(
            hold_id=self.hold_id(), to_account=serializer.validated_data["to_account"], actor=self.actor()
        )
        return Response(HoldOutputSerializer(hold).data)


class BalanceOutputSerializer(serializers.Serializer):
    account_id = serializers.UUIDField()
    currency = serializers.CharField()
    available = MoneyField()
    pending = MoneyField()
    updated_at = serializers.DateTimeField()
    version = serializers.IntegerField()
    source = serializers.ChoiceField(choices=["cache", "table", "ledger"])


def _balance_answer(document: dict, source: str) -> tuple[dict, dict[str, str]]:
    """The body and headers of a balance's answer."""
    body = {
        "account_id": document["account_id"],
        "currency": document["currency"],
        "available": document["available"],
        "pending": document["pending"],
        "updated_at": document["updated_at"],
        "version": document["version"],
        "source": source,
    }
    return body, {"X-Read-Model-Version": str(document["version"])}


class AccountBalanceApi(FastReadView, LedgerApi):
    def fast_get(self, request, account_id: str = "", **kwargs):
        try:
            key = read_cache.balance_key(uuid.UUID(account_id))
        except ValueError:
            return None
        admitted = fastread.admit(request, [(key, fastread.HASH)])
        if admitted is None:
            return None
        document = read_cache.balance_from_hash(admitted.documents[0])
        principal = admitted.principal
        owner = (document["owner_type"], document["owner_id"]) if document else None
        if owner is None or not policy.ledger_readable(
            owner, finance=principal.finance, merchant_id=principal.merchant_id
        ):
            return None  # DRF's path answers from the tables, or the 404
        return fastread.json_response(self, *_balance_answer(document, "cache"))

    @extend_schema(responses={200: BalanceOutputSerializer})
    def get(self, request, **kwargs):
        account_id = self.account_id()
        found = read_models.balance_get(account_id=account_id)
        if found is None:
            # Not projected yet (and Redis missed): the ledger row answers rather than a 404 for a real account.
            ledger_row = selectors.account_balance(account_id=account_id)
            found = (read_models.balance_document(ledger_row), "ledger") if ledger_row else None
        document, source = found if found else (None, None)
        self.require_reader((document["owner_type"], document["owner_id"]) if document else None)
        body, headers = _balance_answer(document, source)
        return Response(body, headers=headers)


class PostingOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    entry_id = serializers.UUIDField()
    kind = serializers.CharField()
    reference = serializers.CharField()
    payment_id = serializers.UUIDField(allow_null=True)
    bucket = serializers.CharField()
    amount = MoneyField()
    created_at = serializers.DateTimeField()


class EntryListOutputSerializer(serializers.Serializer):
    results = PostingOutputSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class AccountEntryListApi(LedgerApi):
    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AccountEntryFilters"

        cursor = serializers.IntegerField(required=False, min_value=1, max_value=_BIGINT_MAX)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)

    @extend_schema(parameters=[FilterSerializer], responses={200: EntryListOutputSerializer})
    def get(self, request, **kwargs):
        account_id = self.account_id()
        self.require_reader(selectors.account_owner(account_id=account_id))
        serializer = self.FilterSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        results, next_cursor = selectors.account_posting_list(
            account_id=account_id,
            before=serializer.validated_data.get("cursor"),
            limit=serializer.validated_data["limit"],
        )
        return Response({"results": results, "next_cursor": str(next_cursor) if next_cursor else None})

from django.urls import path

from ledger import api

ROUTES = [
    ("accounts", api.AccountOpenApi, "account-open"),
    ("accounts/<str:account_id>/deposits", api.AccountDepositApi, "account-deposit"),
    ("accounts/<str:account_id>/balance", api.AccountBalanceApi, "account-balance"),
    ("accounts/<str:account_id>/entries", api.AccountEntryListApi, "account-entries"),
    ("accounts/<str:account_id>/holds", api.HoldPlaceApi, "hold-place"),
    ("holds/<str:hold_id>/release", api.HoldReleaseApi, "hold-release"),
    ("holds/<str:hold_id>/settle", api.HoldSettleApi, "hold-settle"),
    ("transfers", api.TransferCreateApi, "transfer-create"),
]

# As for payments: the contract's paths have no trailing slash; the slashed twins answer too.
urlpatterns = [path(route, view.as_view(), name=name) for route, view, name in ROUTES] + [
    path(f"{route}/", view.as_view()) for route, view, _ in ROUTES
]

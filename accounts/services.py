import re

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from accounts.models import MERCHANT_ID_PATTERN, Merchant, MerchantUser


def merchant_get_or_create(*, merchant_id: str, name: str = "") -> Merchant:
    """The merchant with this id, created if it does not exist yet."""
    if not re.match(MERCHANT_ID_PATTERN, merchant_id):
        raise ValidationError(f"merchant id must match {MERCHANT_ID_PATTERN}")
    merchant, _ = Merchant.objects.get_or_create(id=merchant_id, defaults={"name": name or merchant_id})
    return merchant


@transaction.atomic
def api_token_issue(*, username: str, merchant_id: str | None = None, group: str | None = None) -> str:
    """Create the user if needed, attach it to a merchant and/or group, and return its API token key."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    if merchant_id:
        merchant = merchant_get_or_create(merchant_id=merchant_id)
        MerchantUser.objects.update_or_create(user=user, defaults={"merchant": merchant})
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    token, _ = Token.objects.get_or_create(user=user)
    return token.key

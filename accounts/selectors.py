from accounts.models import MerchantUser


def merchant_id_for_user(*, user) -> str | None:
    """The merchant a user acts for, or None for staff and operators who act for none."""
    if not getattr(user, "is_authenticated", False):
        return None
    return MerchantUser.objects.filter(user_id=user.pk).values_list("merchant_id", flat=True).first()

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

MERCHANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Merchant(models.Model):
    """A business that takes payments. Its id is the merchant id carried by payment events."""

    id = models.CharField(primary_key=True, max_length=64, validators=[RegexValidator(MERCHANT_ID_PATTERN)])
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id__regex=MERCHANT_ID_PATTERN), name="merchant_id_format")
        ]

    def __str__(self) -> str:
        return self.name or self.id


class MerchantUser(models.Model):
    """The user an API token belongs to acts for at most one merchant."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="merchant_link")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="users")

    def __str__(self) -> str:
        return f"{self.user} @ {self.merchant_id}"

from fintech.models import Stream


class PaymentStream(Stream):
    """A payment as the admin lists it: its stream, whose events are the payment's whole history."""

    class Meta:
        proxy = True
        verbose_name = "payment"

import re

from django import forms

from fintech.money import CURRENCY_EXPONENTS, Money, MoneyError
from projections.selectors import PaymentSearch

# A plain decimal in major units, as the transfer form takes it: no exponent, no sign.
DECIMAL_AMOUNT = re.compile(r"[0-9]+(\.[0-9]+)?")


class PaymentSearchForm(forms.Form):
    """Staff search payments by any of these; every one given must match."""

    payment_id = forms.UUIDField(required=False, label="Payment id")
    merchant_id = forms.CharField(required=False, max_length=64, label="Merchant")
    last4 = forms.RegexField(
        required=False, regex=r"^[0-9]{4}$", label="Card last 4", error_messages={"invalid": "Enter 4 digits."}
    )
    authorization_code = forms.CharField(required=False, max_length=32, label="Authorization code")
    amount = forms.CharField(required=False, max_length=40, label="Amount", help_text="In major units: 1000, 10.50.")
    currency = forms.ChoiceField(
        required=False, choices=[("", "any"), *((code, code) for code in sorted(CURRENCY_EXPONENTS))]
    )

    def clean(self):
        cleaned = super().clean()
        text, currency = (cleaned.get("amount") or "").strip(), cleaned.get("currency")
        cleaned["minor"] = None
        if text:
            if not currency:
                self.add_error("currency", "Choose the amount's currency.")
            elif not DECIMAL_AMOUNT.fullmatch(text):
                self.add_error("amount", "Enter a decimal amount such as 1000 or 10.50.")
            else:
                try:
                    cleaned["minor"] = Money.from_decimal_string(text, currency).minor
                except MoneyError as error:
                    self.add_error("amount", str(error))
        return cleaned

    def search(self) -> PaymentSearch:
        data = self.cleaned_data
        return PaymentSearch(
            payment_id=data.get("payment_id"),
            merchant_id=(data.get("merchant_id") or "").strip(),
            last4=data.get("last4") or "",
            authorization_code=(data.get("authorization_code") or "").strip(),
            amount=data.get("minor"),
            currency=data.get("currency") or "",
        )

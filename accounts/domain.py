"""Merchants and customers: the form of a merchant id, the customer's events and errors. Pure Python, no Django.

Events refer to a person by id only; their personal data travels in `pii`, one ciphertext under the
customer's own data key (the vault's subject key), so forgetting the customer makes it unreadable while the
event row itself never changes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fintech.events import DomainEvent

AGGREGATE_TYPE = "customer"
# A merchant's id, which payment events carry; a ledger account's owner id has the same form.
MERCHANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class CustomerError(Exception):
    code = "customer_error"


class CustomerEmailTaken(CustomerError):
    code = "email_taken"


@dataclass(frozen=True, kw_only=True)
class CustomerRegistered(DomainEvent):
    """A customer was registered. `pii`: base64 of the subject-key AEAD ciphertext of a JSON object (name,
    email, phone, address, date_of_birth), associated data `registered_pii_context(customer_id)`."""

    aggregate_type = AGGREGATE_TYPE

    customer_id: uuid.UUID
    pii: str


def registered_pii_context(customer_id: uuid.UUID) -> bytes:
    """The associated data binding a CustomerRegistered ciphertext to its event type and customer."""
    return f"event:CustomerRegistered:{customer_id}".encode()

"""The rules of an endpoint's URL and notification types, as pure functions: what the API's shape check lets
through still has to pass these (and callers other than the API only have these)."""

import pytest

from notifications.domain import TYPES, InvalidWebhookEndpoint, address_public, events_check, url_check


def _resolves_to(*addresses: str):
    return lambda host: list(addresses)


@pytest.mark.parametrize(
    "url",
    ["https://a.example/x\n", "https://a.example/\u00e9", "https://a.example:0/", "https://[::1/", "ftp://a.example/"],
)
def test_url_check_refuses_what_no_endpoint_may_be(url):
    with pytest.raises(InvalidWebhookEndpoint):
        url_check(url, production=False, addresses=_resolves_to())


def test_url_check_in_production_needs_every_address_public():
    public, private = "93.184.216.34", "10.0.0.7"
    assert url_check("https://a.example/", production=True, addresses=_resolves_to(public)) == "https://a.example/"
    # one private address among public ones is enough to refuse: a resolver may hand out either
    with pytest.raises(InvalidWebhookEndpoint):
        url_check("https://a.example/", production=True, addresses=_resolves_to(public, private))
    with pytest.raises(InvalidWebhookEndpoint):
        url_check("https://a.example/", production=True, addresses=_resolves_to())


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("::ffff:10.0.0.1", False),
        ("169.254.169.254", False),
        ("fe80::1%eth0", False),
        ("224.0.0.1", False),
        ("100.64.0.1", False),
        ("not an address", False),
    ],
)
def test_address_public(address, public):
    assert address_public(address) is public


def test_events_check_keeps_each_type_once_in_order():
    assert events_check(["payment.captured", "payment.authorized", "payment.captured"]) == [
        "payment.captured",
        "payment.authorized",
    ]
    assert events_check(TYPES) == list(TYPES)
    with pytest.raises(InvalidWebhookEndpoint):
        events_check([])
    with pytest.raises(InvalidWebhookEndpoint):
        events_check(["payment.exploded"])

import pytest
from django.contrib.auth import get_user_model

from fintech.models import Event
from fintech.money import Money
from payments import services
from tests.payments.helpers import card_token
from tests.staff import staff_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    admin = get_user_model().objects.create_superuser("root", password="x-test-only")
    staff_login(client, admin)
    return client


@pytest.fixture
def captured_payment():
    payment = services.payment_initiate(
        merchant_id="shop-admin-test",
        amount=Money(7700, "JPY"),
        payment_method_token=card_token("shop-admin-test"),
        actor="test",
    )
    services.payment_authorize(payment_id=payment.id, actor="test")
    return services.payment_capture(payment_id=payment.id, actor="test")


def test_payment_admin_search_by_payment_and_merchant_finds_it(staff_client, captured_payment):
    # given a captured payment, when staff search by its id or its merchant, then it is listed
    for term in (str(captured_payment.id), "shop-admin-test"):
        response = staff_client.get("/admin/payments/paymentstream/", {"q": term})
        assert response.status_code == 200
        assert str(captured_payment.id) in response.content.decode()


def test_attempt_admin_search_by_payment_merchant_or_key_finds_its_attempt(staff_client, captured_payment):
    # given the attempt that authorized the payment, when staff search by the payment, the merchant or the key
    key = f"{captured_payment.id}:1:1"
    for term in (str(captured_payment.id), "shop-admin-test", key):
        response = staff_client.get("/admin/payments/authorizationattempt/", {"q": term})
        # then it is listed
        assert response.status_code == 200
        assert key in response.content.decode()
    # and another payment's id finds nothing
    other = staff_client.get("/admin/payments/authorizationattempt/", {"q": "00000000-0000-4000-8000-000000000000"})
    assert key not in other.content.decode()


def test_payment_admin_filter_by_event_type_and_date_lists_it(staff_client, captured_payment):
    today = captured_payment.created_at
    response = staff_client.get(
        "/admin/payments/paymentstream/",
        {"event_type": "PaymentCaptured", "created_at__year": today.year, "created_at__month": today.month},
    )
    assert str(captured_payment.id) in response.content.decode()
    response = staff_client.get("/admin/payments/paymentstream/", {"event_type": "PaymentRefunded"})
    assert str(captured_payment.id) not in response.content.decode()


def test_payment_admin_detail_shows_its_events(staff_client, captured_payment):
    response = staff_client.get(f"/admin/payments/paymentstream/{captured_payment.id}/change/")
    body = response.content.decode()
    assert response.status_code == 200
    for event_type in ("PaymentInitiated", "PaymentAuthorized", "PaymentCaptured"):
        assert event_type in body
    assert 'name="_save"' not in body  # read-only: no save button


def test_event_admin_search_by_type_and_aggregate_finds_events(staff_client, captured_payment):
    response = staff_client.get("/admin/fintech/event/", {"q": str(captured_payment.id)})
    assert response.content.decode().count(str(captured_payment.id)) >= 3
    response = staff_client.get("/admin/fintech/event/", {"q": "PaymentCaptured"})
    assert "PaymentCaptured" in response.content.decode()


@pytest.mark.parametrize(
    "path",
    [
        "/admin/payments/paymentstream/add/",
        "/admin/payments/paymentstream/{payment}/delete/",
        "/admin/fintech/event/add/",
        "/admin/fintech/event/{event}/delete/",
    ],
)
def test_admin_add_or_delete_is_forbidden_even_for_superuser(staff_client, captured_payment, path):
    event = Event.objects.filter(aggregate_id=captured_payment.id).first()
    url = path.format(payment=captured_payment.id, event=event.event_id)
    assert staff_client.get(url).status_code == 403
    assert staff_client.post(url, {"post": "yes"}).status_code == 403
    assert Event.objects.filter(aggregate_id=captured_payment.id).count() == 3


def test_admin_change_post_changes_nothing(staff_client, captured_payment):
    event = Event.objects.get(aggregate_id=captured_payment.id, version=1)
    response = staff_client.post(f"/admin/fintech/event/{event.event_id}/change/", {"event_type": "Tampered"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.event_type == "PaymentInitiated"

from django.urls import reverse

from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.customers.services import CustomerInput, create_customer
from tests.helpers import login


def test_managers_keep_reference_data_in_the_admin_but_not_units_or_staff(client, mina, units):
    login(client, mina)
    assert client.get(reverse("admin:sales_product_changelist")).status_code == 200
    assert client.get(reverse("admin:sales_product_add")).status_code == 200
    assert client.get(reverse("admin:core_businessunit_changelist")).status_code == 200  # view only
    assert client.get(reverse("admin:core_businessunit_add")).status_code == 403
    assert client.get(reverse("admin:core_user_changelist")).status_code == 403
    assert client.get(reverse("admin:core_auditevent_changelist")).status_code == 403


def test_a_manager_sees_only_the_products_of_their_units(client, mina, products):
    login(client, mina)
    html = client.get(reverse("admin:sales_product_changelist")).content.decode()
    assert "디럭스 룸" in html and "크루아상" not in html


def test_staff_cannot_use_the_admin(client, bora):
    login(client, bora)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admins_read_the_audit_trail_which_nobody_can_edit(client, alice, units):
    create_customer(actor=Actor(user=alice, ip="127.0.0.1"), unit=units["bakery"], data=CustomerInput(name="감사대상"))
    event = AuditEvent.objects.get()
    login(client, alice)
    html = client.get(reverse("admin:core_auditevent_changelist")).content.decode()
    assert "customer.create" in html and "감사대상" not in html
    assert client.post(reverse("admin:core_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_changing_a_role_in_the_admin_changes_real_access(client, alice, units):
    from dangol.core.models import Role, User
    from dangol.core.services import create_staff_user

    kim = create_staff_user(username="kim", password="x-very-long-pass", role=Role.ADMIN)
    assert kim.is_superuser
    login(client, alice)
    response = client.post(reverse("admin:core_user_change", args=[kim.pk]), {
        "username": "kim", "first_name": "", "last_name": "", "email": "", "is_active": "on", "role": "staff",
        "units": [units["bakery"].pk], "last_login_0": "", "last_login_1": "", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"})
    assert response.status_code == 302, response.content.decode()[:2000]
    kim = User.objects.get(pk=kim.pk)
    assert (kim.role, kim.is_superuser, kim.is_staff, kim.sees_all_units) == ("staff", False, False, False)


def test_a_manager_cannot_touch_the_categories_of_other_units(client, mina, products):
    from dangol.sales.models import Category

    login(client, mina)
    bakery_bread = Category.objects.get(name="빵")
    assert client.get(reverse("admin:sales_category_change", args=[bakery_bread.pk])).status_code == 302  # not found → redirect
    html = client.get(reverse("admin:sales_product_add")).content.decode()
    assert "객실" in html and ">빵<" not in html


def test_client_ip_trusts_forwarded_for_only_behind_configured_proxies(rf, settings):
    from dangol.core.audit import client_ip

    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.2"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.9"

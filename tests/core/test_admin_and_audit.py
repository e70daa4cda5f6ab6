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

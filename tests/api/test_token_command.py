import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from dangol.core.models import AuditEvent


def run(*args) -> list[str]:
    out = io.StringIO()
    call_command("token", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_it_creates_a_token_and_prints_the_key_last(bora):
    lines = run("create", "--user", "bora")

    key = Token.objects.get(user=bora).key
    assert lines[-1] == key
    assert AuditEvent.objects.filter(action="api_token.create", object_id=str(bora.pk), via="cli").count() == 1
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {lines[-1]}")
    assert client.get("/api/v1/customers").status_code == 200


def test_it_returns_the_existing_token_on_a_second_run(bora):
    first = run("create", "--user", "bora")[-1]

    second = run("create", "--user", "bora")

    assert second[-1] == first
    assert Token.objects.filter(user=bora).count() == 1
    assert AuditEvent.objects.filter(action="api_token.create").count() == 1


def test_an_unknown_user_is_a_clear_error(db):
    with pytest.raises(CommandError, match="no user “ghost”"):
        run("create", "--user", "ghost")
    assert not Token.objects.exists()


def test_a_deactivated_account_gets_no_token(bora):
    bora.is_active = False
    bora.save()

    with pytest.raises(CommandError, match="deactivated"):
        run("create", "--user", "bora")

import pytest
from rest_framework.test import APIClient

from dangol.api.errors import flatten_errors

from .conftest import bearer_client, token_key

PROTECTED = [
    ("get", "/api/v1/customers"),
    ("post", "/api/v1/customers"),
    ("get", "/api/v1/customers/lookup?phone=01012345678"),
    ("get", "/api/v1/customers/1"),
    ("patch", "/api/v1/customers/1"),
    ("get", "/api/v1/customers/1/orders"),
    ("post", "/api/v1/orders"),
    ("post", "/api/v1/orders/1/refund"),
]


@pytest.mark.parametrize("method, url", PROTECTED)
def test_it_answers_401_with_a_bearer_challenge_without_a_token(db, method, url):
    response = getattr(APIClient(), method)(url, {}, format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["code"] == "not_authenticated"
    assert response.json()["errors"] == {}


@pytest.mark.parametrize("header", ["Bearer not-a-real-token", "Bearer", "Bearer two words", "Token x", "Basic Ym9yYTpwdw=="])
def test_it_answers_401_to_a_wrong_or_malformed_token(bora, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/customers")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["code"] in {"authentication_failed", "not_authenticated"}


def test_a_token_of_a_deactivated_account_is_refused(bora):
    client = bearer_client(bora)
    bora.is_active = False
    bora.save()

    assert client.get("/api/v1/customers").status_code == 401


def test_the_token_works_with_any_case_of_the_scheme_word(bora):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"bearer {token_key(bora)}")

    assert client.get("/api/v1/customers").status_code == 200


def test_unknown_paths_under_the_api_answer_a_json_404(db):
    response = APIClient().get("/api/v1/nothing/here")

    assert response.status_code == 404
    assert response.json() == {"detail": response.json()["detail"], "code": "not_found", "errors": {}}


def test_errors_are_in_english_when_asked(bora_api):
    response = bora_api.post("/api/v1/customers", {}, format="json", HTTP_ACCEPT_LANGUAGE="en")

    assert response.json()["errors"]["name"] == ["This field is required."]
    assert response.json()["detail"] == "Invalid input."


def test_nested_errors_are_flattened_to_dotted_fields():
    assert flatten_errors({
        "name": ["required"],
        "lines": {0: {"quantity": ["not an integer"]}, 2: {"product": ["required"]}},
        "birthday": {"non_field_errors": ["expected an object"]},
        "non_field_errors": ["both missing"],
    }) == {
        "name": ["required"],
        "lines.0.quantity": ["not an integer"],
        "lines.2.product": ["required"],
        "birthday": ["expected an object"],
        "non_field_errors": ["both missing"],
    }
    assert flatten_errors(["a list body"]) == {"non_field_errors": ["a list body"]}
    assert flatten_errors([{}, {"quantity": ["bad"]}], "lines") == {"lines.1.quantity": ["bad"]}

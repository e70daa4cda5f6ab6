"""A URLconf with a deliberately leaky page, to prove the permission matrix catches one (test_the_matrix_catches_a_leak)."""
from django.http import HttpResponse
from django.urls import include, path

from dangol.customers.models import Customer


def leaky(request, customer_id: int):
    return HttpResponse(Customer.objects.get(pk=customer_id).name)  # no login, no unit scope


urlpatterns = [path("leaky/<int:customer_id>/", leaky, name="leaky"), path("", include("dangol.urls"))]

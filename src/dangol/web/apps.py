from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "dangol.web"
    label = "web"
    verbose_name = "Staff app"

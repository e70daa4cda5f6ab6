"""Pages of the analytics app, registered in web/urls.py."""
urlpatterns: list = []

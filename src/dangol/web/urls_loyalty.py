"""Pages of the loyalty app, registered in web/urls.py."""
urlpatterns: list = []

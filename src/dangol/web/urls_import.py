"""The import wizard: upload, preview, column mapping, dry run, result and error report."""
urlpatterns: list = []

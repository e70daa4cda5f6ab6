"""Notice versions are published in the admin (admins only); a version is never edited once shown: publish a new one.
Requests are worked in the staff app, where scope and audit apply; the admin only lists them."""
from django.contrib import admin

from dangol.core.audit import Actor
from dangol.customers.models import NoticeVersion

from . import services


@admin.register(NoticeVersion)
class NoticeVersionAdmin(admin.ModelAdmin):
    list_display = ["kind", "version", "title", "effective_from"]
    list_filter = ["kind"]
    fields = ["kind", "version", "title", "purpose", "items", "retention", "text", "effective_from"]

    def has_module_permission(self, request):
        return services.may_review_access_log(request.user)

    def has_view_permission(self, request, obj=None):
        return services.may_review_access_log(request.user)

    def has_add_permission(self, request):
        return services.may_review_access_log(request.user)

    def has_change_permission(self, request, obj=None):
        return False  # published notices are evidence: never changed

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            return
        published = services.publish_notice(
            actor=Actor.from_request(request, via="admin"), kind=obj.kind, version=obj.version, title=obj.title,
            purpose=obj.purpose, items=obj.items, retention=obj.retention, text=obj.text, effective_from=obj.effective_from)
        obj.pk = published.pk

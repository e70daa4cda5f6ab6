from django.contrib import admin

from .models import Tag

# Customer records are personal data: staff work with them in the staff app, where every view and change is
# scoped to business units and audited. The admin keeps only reference data.


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ["name"]

from django.contrib import admin
from django.db.models import Q

from .models import Category, Product


class UnitScopedAdmin(admin.ModelAdmin):
    """Managers see and edit only the rows of their own business units; admins see all."""

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(unit__in=request.user.units.all())

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            units = request.user.units.all()
            if db_field.name == "unit":
                kwargs["queryset"] = units
            elif db_field.name in ("category", "parent"):
                kwargs["queryset"] = Category.objects.filter(Q(unit__in=units) | Q(unit__isnull=True))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Category)
class CategoryAdmin(UnitScopedAdmin):
    list_display = ["name", "parent", "unit"]
    list_filter = ["unit"]
    search_fields = ["name"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if not request.user.is_superuser:
            form.base_fields["unit"].required = True  # group-wide categories are kept by admins
        return form


@admin.register(Product)
class ProductAdmin(UnitScopedAdmin):
    list_display = ["name", "sku", "unit", "category", "price", "unit_cost", "is_active"]
    list_filter = ["unit", "category", "is_active"]
    search_fields = ["name", "sku"]
    list_select_related = ["unit", "category"]

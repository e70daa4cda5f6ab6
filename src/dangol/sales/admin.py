from django.contrib import admin

from .models import Category, Product


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "parent", "unit"]
    list_filter = ["unit"]
    search_fields = ["name"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "sku", "unit", "category", "price", "unit_cost", "is_active"]
    list_filter = ["unit", "category", "is_active"]
    search_fields = ["name", "sku"]
    list_select_related = ["unit", "category"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(unit__in=request.user.units.all())

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "unit" and not request.user.is_superuser:
            kwargs["queryset"] = request.user.units.all()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

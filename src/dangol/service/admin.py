"""SLA rules and surveys are configured in the admin; cases are worked in the staff app."""
from django.contrib import admin

from .models import SlaRule, Survey, SurveyQuestion


@admin.register(SlaRule)
class SlaRuleAdmin(admin.ModelAdmin):
    list_display = ["case_type", "priority", "resolve_hours"]
    list_editable = ["resolve_hours"]
    list_filter = ["case_type"]


class SurveyQuestionInline(admin.TabularInline):
    model = SurveyQuestion
    extra = 1


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    list_display = ["name", "score_kind", "trigger", "unit", "is_active"]
    list_filter = ["trigger", "score_kind", "is_active"]
    inlines = [SurveyQuestionInline]

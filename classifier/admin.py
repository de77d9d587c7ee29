from django.contrib import admin

from classifier.models import ModelVersion, Prediction


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "arch", "is_active", "created")
    actions = ["activate"]

    @admin.action(description="Activate the selected model version")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one model version to activate.", level="error")
            return
        queryset.get().activate()


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ("painting", "model_version", "status", "label", "confidence", "finished_at")
    list_filter = ("status", "model_version")
    raw_id_fields = ("painting",)

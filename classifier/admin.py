from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _

from classifier.forms import TrainForm
from classifier.models import ModelVersion, Prediction, TrainingRun
from classifier.services import TrainingError
from gallery.permissions import is_admin


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "arch", "is_active", "created")
    actions = ["activate"]
    # The changelist's "Train a new model" button.
    change_list_template = "admin/classifier/modelversion/change_list.html"

    @admin.action(description="Activate the selected model version")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one model version to activate.", level="error")
            return
        version = queryset.get()
        queued = version.activate_and_reclassify()
        self.message_user(
            request, f"{version.name} is active; {queued} painting(s) queued for classification."
        )

    def get_urls(self):
        train = path(
            "train/", self.admin_site.admin_view(self.train_view), name="classifier_modelversion_train"
        )
        return [train, *super().get_urls()]

    def train_view(self, request):
        """The form behind "Train a new model": freezes when asked, records a TrainingRun and queues
        it on the worker's ``training`` queue, then shows the run's live page."""
        if not is_admin(request.user):  # admins (staff) train; the admin site already insists on staff
            raise PermissionDenied
        form = TrainForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                run = form.start(request.user)
            except TrainingError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _("Training queued; this page follows it."))
                return redirect("admin:classifier_trainingrun_change", run.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Train a new model"),
            "form": form,
            "runs": TrainingRun.objects.select_related("model_version", "dataset_version")[:5],
        }
        return TemplateResponse(request, "admin/classifier/modelversion/train.html", context)


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    """Read-only: runs are started from "Train a new model" (or ``manage.py train``); the change page
    follows one live (state, epoch, losses, accuracy, then the model version or the error)."""

    list_display = (
        "__str__",
        "dataset_version",
        "state",
        "epoch",
        "model_version",
        "requested_by",
        "created",
    )
    list_filter = ("state",)
    change_form_template = "admin/classifier/trainingrun/change_form.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        run = (
            TrainingRun.objects.filter(pk=object_id)
            .select_related("model_version", "dataset_version")
            .first()
        )
        extra = {"run": run, "train_url": reverse("admin:classifier_modelversion_train")}
        if run is not None:
            extra["total_epochs"] = run.options.get("epochs")
            extra["live"] = run.state in (TrainingRun.State.QUEUED, TrainingRun.State.RUNNING)
        return super().changeform_view(request, object_id, form_url, {**extra, **(extra_context or {})})


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ("painting", "model_version", "status", "label", "confidence", "finished_at")
    list_filter = ("status", "model_version")
    raw_id_fields = ("painting",)

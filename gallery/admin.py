from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from gallery.forms_curation import RelabelForm
from gallery.models import LabelChange, Painting
from gallery.permissions import is_curator


class LabelChangeInline(admin.TabularInline):
    """The painting's label history, read-only: labels change through relabel(), which writes it."""

    model = LabelChange
    fk_name = "painting"
    fields = ("changed_at", "changed_by", "old_label", "new_label", "reason", "reverts")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Painting)
class PaintingAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "artist", "label", "split", "created")
    list_filter = ("label", "split", "source")
    search_fields = ("title", "artist", "sha256")
    # The label is read-only here so that every change goes through relabel() and its audit trail:
    # the "Set curated label…" action does it, for one painting or many.
    readonly_fields = ("sha256", "width", "height", "format", "created", "label")
    inlines = [LabelChangeInline]
    actions = ["set_label"]

    def has_curate_permission(self, request) -> bool:
        return is_curator(request.user)

    # One action with a form, not one per class: classes are data, and a new one (kr) needs no code.
    @admin.action(description=_("Set curated label…"), permissions=["curate"])
    def set_label(self, request, queryset):
        """An intermediate page asks for the class (existing or new) and a reason, then relabels the
        selected paintings: one LabelChange each, all or none."""
        form = RelabelForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            changed = 0
            with transaction.atomic():
                for painting in queryset:
                    changed += form.save(painting, by=request.user) is not None
            self.message_user(
                request,
                ngettext("%(n)s painting relabelled.", "%(n)s paintings relabelled.", changed)
                % {"n": changed},
                messages.SUCCESS,
            )
            return None  # back to the list
        context = {
            **self.admin_site.each_context(request),
            "title": _("Set curated label"),
            "opts": self.model._meta,
            "form": form,
            "paintings": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/gallery/painting/set_label.html", context)


@admin.register(LabelChange)
class LabelChangeAdmin(admin.ModelAdmin):
    """Every curated-label change, for auditing; read-only (a revert is made on the painting's page)."""

    list_display = ("changed_at", "painting", "old_label", "new_label", "changed_by", "reason")
    list_filter = ("new_label", "old_label")
    search_fields = ("painting__title", "reason", "changed_by__username")
    raw_id_fields = ("painting",)
    list_select_related = ("painting", "changed_by")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

"""Forms for curation: relabelling one painting or several, shared by the pages, the API and the admin.

What a valid class name is, is decided once, by ``gallery.models.normalize_label`` (the same check
``Painting.relabel`` makes); these forms only gather the choice and say why it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from gallery.models import LabelChange, Painting, normalize_label

# At most this many paintings in one bulk relabel (a page of the gallery is 24, of the queue 25).
BULK_LIMIT = 500


class RelabelForm(forms.Form):
    """Choose an existing class or type a new one (``kr``...), or clear the label; an optional reason.

    ``cleaned_data["target"]`` is the label to set (None: clear it)."""

    label = forms.CharField(label=_("Class"), required=False, max_length=32, widget=forms.Select)
    new_label = forms.CharField(
        label=_("or a new class"),
        required=False,
        max_length=32,
        widget=forms.TextInput(
            attrs={"placeholder": _("e.g. kr"), "autocomplete": "off", "spellcheck": "false"}
        ),
    )
    reason = forms.CharField(
        label=_("Reason (optional)"),
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"placeholder": _("e.g. seal of a Joseon painter")}),
    )
    clear = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, class_names: list[str] | None = None, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        names = Painting.objects.class_names() if class_names is None else class_names
        self.fields["label"].widget.choices = [("", _("Choose a class…"))] + [(n, n) for n in names]

    def clean(self) -> dict:
        data = super().clean()
        if data.get("clear"):
            data["target"] = None
            return data
        chosen = data.get("new_label") or data.get("label")
        field = "new_label" if data.get("new_label") else "label"
        try:
            data["target"] = normalize_label(chosen)
        except ValidationError as refused:
            self.add_error(field, refused)
            return data
        if data["target"] is None:
            self.add_error("label", _("Choose a class or type a new one."))
        return data

    def save(self, painting: Painting, by=None) -> LabelChange | None:
        """Relabel ``painting`` as chosen; None when it already had that label."""
        return painting.relabel(self.cleaned_data["target"], by=by, reason=self.cleaned_data["reason"])


@dataclass
class BulkResult:
    changes: list[LabelChange] = field(default_factory=list)
    unchanged: int = 0  # already had the label (or the prediction's)
    skipped: list[Painting] = field(default_factory=list)  # accept: no finished prediction


class BulkRelabelForm(RelabelForm):
    """The same choice for several paintings at once (checkboxes on the gallery and the review queue),
    or ``accept``: take each painting's finished prediction as its label."""

    ids = forms.TypedMultipleChoiceField(
        coerce=int,
        widget=forms.MultipleHiddenInput,
        error_messages={"required": _("Select at least one painting.")},
    )
    accept = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Any id is a valid choice here; the ones that name no painting are refused in clean_ids.
        self.fields["ids"].valid_value = lambda value: True

    def clean_ids(self) -> list[Painting]:
        ids = list(dict.fromkeys(self.cleaned_data["ids"]))
        if len(ids) > BULK_LIMIT:
            raise ValidationError(
                _("Select at most %(limit)s paintings at once (%(n)s selected).")
                % {"limit": BULK_LIMIT, "n": len(ids)}
            )
        found = Painting.objects.in_bulk(ids)
        missing = [str(pk) for pk in ids if pk not in found]
        if missing:
            raise ValidationError(_("No painting has the id %(ids)s.") % {"ids": ", ".join(missing)})
        return [found[pk] for pk in ids]

    def clean(self) -> dict:
        if self.cleaned_data.get("accept"):
            # Accepting predictions needs no class: drop what the shared choice would complain about.
            data = forms.Form.clean(self)
            data["target"] = None
            return data
        return super().clean()

    @transaction.atomic
    def save(self, by=None) -> BulkResult:
        """One LabelChange per painting whose label changes, all or none."""
        result = BulkResult()
        for painting in self.cleaned_data["ids"]:
            if self.cleaned_data.get("accept"):
                try:
                    change = painting.accept_prediction(by=by)
                except ValidationError:
                    result.skipped.append(painting)
                    continue
            else:
                change = painting.relabel(
                    self.cleaned_data["target"], by=by, reason=self.cleaned_data["reason"]
                )
            if change:
                result.changes.append(change)
            else:
                result.unchanged += 1
        return result

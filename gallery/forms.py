"""Forms for the gallery pages: the filters of the painting list and the upload form.

The filter form only renders the filters and keeps their state; the filtering itself is
``Painting.objects.browse()``, shared with the API.
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from gallery.models import Painting


class BrowseForm(forms.Form):
    """The gallery's filters, submitted with GET so that every filter state has its own URL."""

    q = forms.CharField(
        label=_("Search"),
        required=False,
        widget=forms.SearchInput(attrs={"placeholder": _("Title or artist")}),
    )
    predicted = forms.ChoiceField(label=_("Predicted"), required=False)
    label = forms.ChoiceField(label=_("Curated label"), required=False)
    agreement = forms.ChoiceField(
        label=_("Label vs prediction"),
        required=False,
        choices=[
            ("", _("Any")),
            ("agree", _("Agree")),
            ("disagree", _("Disagree")),
            ("unlabelled", _("No curated label")),
        ],
    )
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[
            ("", _("Any")),
            ("pending", _("Waiting")),
            ("running", _("Classifying")),
            ("done", _("Done")),
            ("failed", _("Failed")),
            ("none", _("No prediction")),
        ],
    )
    min_conf = forms.IntegerField(
        label=_("Confidence from (%)"),
        required=False,
        min_value=0,
        max_value=100,
        widget=forms.NumberInput(attrs={"placeholder": "0", "inputmode": "numeric"}),
    )
    max_conf = forms.IntegerField(
        label=_("to (%)"),
        required=False,
        min_value=0,
        max_value=100,
        widget=forms.NumberInput(attrs={"placeholder": "100", "inputmode": "numeric"}),
    )
    sort = forms.ChoiceField(
        label=_("Sort"),
        required=False,
        choices=[
            ("newest", _("Newest first")),
            ("oldest", _("Oldest first")),
            ("-confidence", _("Most confident first")),
            ("confidence", _("Least confident first")),
        ],
    )

    def __init__(self, *args, class_names: list[str], **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        classes = [("", _("Any"))] + [(name, name) for name in class_names]
        self.fields["predicted"].choices = classes
        self.fields["label"].choices = classes

    @property
    def is_filtered(self) -> bool:
        """Whether any filter narrows the list (the sort order alone does not)."""
        data = self.data if self.is_bound else {}
        return any(data.get(name) for name in self.fields if name != "sort")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input (Django's documented recipe); the content checks are
    ``gallery.uploads``'s, so that the page and the API refuse the same files for the same reasons."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None) -> list:
        single = super().clean  # bound here: a comprehension has no zero-argument super()
        if isinstance(data, list | tuple) and data:
            return [single(d, initial) for d in data]
        cleaned = single(None, initial)  # "This field is required." when nothing was sent
        return [cleaned] if cleaned else []


class PaintingMetadataForm(forms.ModelForm):
    """The optional descriptive fields, validated by the model's own limits."""

    class Meta:
        model = Painting
        fields = ["title", "artist", "period", "source", "license"]
        widgets = {
            "title": forms.TextInput(attrs={"placeholder": _("From the file name when empty")}),
            "artist": forms.TextInput(attrs={"placeholder": _("e.g. Guo Xi")}),
            "period": forms.TextInput(attrs={"placeholder": _("e.g. Northern Song, 11th century")}),
            "source": forms.TextInput(attrs={"placeholder": _("Museum, collection or URL")}),
            "license": forms.TextInput(attrs={"placeholder": _("e.g. Public domain")}),
        }

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def metadata(self) -> dict[str, str]:
        """The fields that were filled in, as keyword arguments for ``accept_uploads``."""
        return {
            name: value for name, value in self.cleaned_data.items() if name in self.Meta.fields and value
        }


class UploadForm(PaintingMetadataForm):
    files = MultipleFileField(
        label=_("Images or zip archives"),
        widget=MultipleFileInput(attrs={"accept": "image/*,.zip,application/zip"}),
    )

    field_order = ["files", "title", "artist", "period", "source", "license"]

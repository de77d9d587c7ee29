"""Forms of the dataset pages: importing a zip, freezing the curated set."""

from __future__ import annotations

import zipfile

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from gallery.models import DatasetVersion


class ImportDatasetForm(forms.Form):
    archive = forms.FileField(
        label=_("Zip archive"),
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
    )
    source = forms.CharField(
        label=_("Source"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": _("For files a manifest does not describe")}),
    )
    license = forms.CharField(
        label=_("Licence"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": _("e.g. Public domain")}),
    )
    dry_run = forms.BooleanField(label=_("Check only: write nothing"), required=False)

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean_archive(self):
        archive = self.cleaned_data["archive"]
        if not zipfile.is_zipfile(archive):
            raise forms.ValidationError(_("This is not a zip archive."))
        archive.seek(0)
        return archive


class FreezeForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    seed = forms.IntegerField(label=_("Split seed"), initial=0)
    val = forms.FloatField(label=_("Validation fraction"), initial=0.15, min_value=0, max_value=0.9)
    test = forms.FloatField(label=_("Test fraction"), initial=0.15, min_value=0, max_value=0.9)
    notes = forms.CharField(label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.fields["name"].initial = self.suggested_name()

    @staticmethod
    def suggested_name() -> str:
        """Today's date, made unique: 2025-06-01, then 2025-06-01-2..."""
        base = timezone.now().strftime("%Y-%m-%d")
        taken = set(DatasetVersion.objects.filter(name__startswith=base).values_list("name", flat=True))
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        return name

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if DatasetVersion.objects.filter(name=name).exists():
            raise forms.ValidationError(_("A dataset version with this name exists already."))
        return name

    def clean(self):
        cleaned = super().clean()
        val, test = cleaned.get("val"), cleaned.get("test")
        if val is not None and test is not None and val + test >= 1:
            raise forms.ValidationError(_("The validation and test fractions must sum to less than 1."))
        return cleaned

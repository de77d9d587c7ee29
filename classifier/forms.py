"""The admin's "Train a new model" form: the options of ``manage.py train``."""

from __future__ import annotations

from django import forms
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from classifier.models import ModelVersion, TrainingRun
from classifier.services import (
    TrainingError,
    TrainOptions,
    check_dataset_version,
    freeze_dataset_version,
    queue_training,
)
from gallery.models import DatasetVersion
from ml.config import ARCHS, PRESETS


class TrainForm(forms.Form):
    dataset_version = forms.ModelChoiceField(
        queryset=DatasetVersion.objects.order_by("-created", "-pk"),
        required=False,
        empty_label=_("Freeze the curated set now"),
        label=_("Dataset version"),
        help_text=_("Train on a frozen dataset version, or freeze every curated painting now."),
    )
    dataset_name = forms.CharField(
        required=False,
        max_length=100,
        label=_("New dataset version's name"),
        help_text=_("When freezing now; made up from the date when empty."),
    )
    val = forms.FloatField(initial=0.15, min_value=0, max_value=0.9, label=_("Validation fraction"))
    test = forms.FloatField(initial=0.15, min_value=0, max_value=0.9, label=_("Test fraction"))
    arch = forms.ChoiceField(choices=[(a, a) for a in ARCHS], label=_("Architecture"))
    weights = forms.CharField(
        initial="none",
        max_length=500,
        label=_("Initial weights"),
        help_text=_("none (from scratch), imagenet, or the path of a checkpoint on the worker."),
    )
    epochs = forms.IntegerField(initial=10, min_value=1, max_value=500, label=_("Epochs"))
    preset = forms.ChoiceField(
        choices=[(p, p) for p in PRESETS],
        label=_("Augmentation preset"),
        help_text=_("robust randomises how images were delivered; study is the original transforms."),
    )
    image_size = forms.IntegerField(initial=224, min_value=32, max_value=1024, label=_("Image size (px)"))
    batch_size = forms.IntegerField(initial=32, min_value=1, max_value=1024, label=_("Batch size"))
    seed = forms.IntegerField(initial=0, label=_("Seed"))
    name = forms.CharField(
        required=False,
        max_length=100,
        label=_("Model version's name"),
        help_text=_("Made up from the architecture, dataset and time when empty."),
    )
    activate = forms.BooleanField(
        required=False,
        label=_("Activate when done"),
        help_text=_("Make it the active model and classify the gallery with it."),
    )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            data["options"] = TrainOptions(
                **{k: data[k] for k in ("arch", "weights", "epochs", "preset", "image_size", "batch_size")},
                seed=data["seed"],
                name=data["name"].strip(),
                activate=data["activate"],
            )
        except TrainingError as exc:
            raise forms.ValidationError(str(exc)) from None
        if data["options"].name and ModelVersion.objects.filter(name=data["options"].name).exists():
            self.add_error("name", _("A model version with this name exists."))
        if data["dataset_version"] is not None:
            try:
                check_dataset_version(data["dataset_version"])
            except TrainingError as exc:
                self.add_error("dataset_version", str(exc))
        return data

    def start(self, user) -> TrainingRun:
        """Freeze (when asked), record the run and queue it on the ``training`` queue. Raises
        TrainingError (freezing refused, a set that cannot train) with nothing queued."""
        data = self.cleaned_data
        with transaction.atomic():
            dataset_version = data["dataset_version"]
            if dataset_version is None:
                dataset_version = freeze_dataset_version(
                    name=data["dataset_name"].strip(),
                    seed=data["seed"],
                    val=data["val"],
                    test=data["test"],
                    by=user,
                )
                check_dataset_version(dataset_version)
            run = TrainingRun.objects.create(
                dataset_version=dataset_version, options=data["options"].to_dict(), requested_by=user
            )
            queue_training(run)
        return run

"""Files follow their rows: deleting a painting (from the admin, a merge, the API) removes its
original and thumbnail once the transaction commits. Its predictions' overlays go with the
predictions (classifier.signals)."""

from __future__ import annotations

from django.db.models.signals import post_delete
from django.dispatch import receiver

from classifier.signals import delete_on_commit
from gallery.models import Painting


@receiver(post_delete, sender=Painting)
def delete_painting_files(sender, instance: Painting, **kwargs) -> None:
    # Another row may hold the same file name only by accident of a copy; sha256 is unique, so not.
    delete_on_commit(instance.image)
    delete_on_commit(instance.thumbnail)

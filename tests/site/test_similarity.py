"""classifier.similarity: the per-process embedding index behind "similar works" gives the same
neighbours as a brute-force cosine over the database, and stays current as predictions are added,
redone and deleted, reading everything again only when it must."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from classifier.similarity import EmbeddingIndex

from .factory import make_model_version, make_painting, make_prediction

pytestmark = pytest.mark.django_db


def vec(*values: float) -> bytes:
    return np.array(values, dtype=np.float32).tobytes()


def classified(version, values, minutes_ago: float = 0.0, **kw):
    at = timezone.now() - timedelta(minutes=minutes_ago)
    return make_prediction(make_painting(**kw), version, embedding=vec(*values), finished_at=at)


def test_the_index_finds_the_same_neighbours_as_a_brute_force_cosine():
    version = make_model_version()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((60, 32)).astype(np.float32)
    preds = [classified(version, v, minutes_ago=60 - i) for i, v in enumerate(vectors)]
    query = vectors[0]

    found = EmbeddingIndex(version.pk).nearest(query, k=5, exclude_painting=preds[0].painting_id)

    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit @ (query / np.linalg.norm(query))
    expected = [i for i in np.argsort(-cosine) if i != 0][:5]
    assert [pk for pk, _ in found] == [preds[i].painting_id for i in expected]
    assert [s for _, s in found] == pytest.approx([cosine[i] for i in expected], abs=2e-3)


def test_new_predictions_are_added_without_reading_everything_again():
    version = make_model_version()
    me = classified(version, (1, 0, 0), minutes_ago=10)
    classified(version, (0, 1, 0), minutes_ago=9)
    index = EmbeddingIndex(version.pk)
    assert index.nearest(np.array([1, 0, 0], np.float32), k=3, exclude_painting=me.painting_id)
    assert index.full_loads == 1

    twin = classified(version, (1, 0.05, 0), title="twin")
    found = index.nearest(np.array([1, 0, 0], np.float32), k=3, exclude_painting=me.painting_id)

    assert found[0][0] == twin.painting_id and found[0][1] > 0.99
    assert index.full_loads == 1, "one new row is read on its own"


def test_a_deleted_painting_and_a_redone_prediction_make_it_reload():
    version = make_model_version()
    me = classified(version, (1, 0, 0), minutes_ago=10)
    gone = classified(version, (1, 0.1, 0), minutes_ago=9)
    redone = classified(version, (0, 0, 1), minutes_ago=8)
    index = EmbeddingIndex(version.pk)
    query = np.array([1, 0, 0], np.float32)
    assert index.nearest(query, k=1, exclude_painting=me.painting_id)[0][0] == gone.painting_id

    gone.painting.delete()
    found = index.nearest(query, k=3, exclude_painting=me.painting_id)
    assert [pk for pk, _ in found] == [redone.painting_id]

    redone.embedding, redone.finished_at = vec(1, 0.2, 0), timezone.now()
    redone.save()
    (found,) = index.nearest(query, k=3, exclude_painting=me.painting_id)
    assert found[0] == redone.painting_id and found[1] > 0.97
    assert index.full_loads == 3


def test_other_versions_and_unfinished_predictions_are_not_neighbours():
    version, other = make_model_version(), make_model_version("v0", active=False)
    me = classified(version, (1, 0, 0))
    classified(other, (1, 0, 0))
    make_prediction(make_painting(), version, status="pending", label="", embedding=None)
    assert EmbeddingIndex(version.pk).nearest(np.array([1, 0, 0], np.float32), 5, me.painting_id) == []

"""The review queue /review/: each ordering on crafted predictions, and accepting a prediction."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from classifier.models import Prediction, Status
from gallery.models import LabelChange, Painting

from .factory import make_curator, make_model_version, make_painting

pytestmark = pytest.mark.django_db

URL = reverse("gallery:review")


@pytest.fixture
def curator_client(client):
    client.force_login(make_curator("mina"))
    return client


def predict(painting, version, probabilities: dict | None, status=Status.DONE) -> Prediction:
    label = max(probabilities, key=probabilities.get) if probabilities else ""
    return Prediction.objects.create(
        painting=painting,
        model_version=version,
        status=status,
        label=label,
        confidence=probabilities[label] if probabilities else None,
        probabilities=probabilities or {},
    )


@pytest.fixture
def queue():
    """Three classes, so that the smallest margin is not the lowest confidence:
    close-call: 0.50 / 0.45 / 0.05 -> margin 0.05 (confidence 0.50)
    spread:     0.40 / 0.30 / 0.30 -> margin 0.10 (confidence 0.40, the lowest)
    sure:       0.90 / 0.06 / 0.04 -> margin 0.84
    """
    version = make_model_version("v1", class_names=("cn", "jp", "kr"))
    rows = {
        "close-call": dict(label="jp", probs={"cn": 0.50, "jp": 0.45, "kr": 0.05}, score=0.30),
        "spread": dict(label=None, probs={"cn": 0.30, "jp": 0.30, "kr": 0.40}, score=None),
        "sure": dict(label="cn", probs={"jp": 0.90, "cn": 0.06, "kr": 0.04}, score=0.85),
        "pending": dict(label=None, probs=None, score=None),
        "unpredicted": dict(label="jp", probs="none", score=None),
        "agreeing": dict(label="cn", probs={"cn": 0.70, "jp": 0.20, "kr": 0.10}, score=0.05),
    }
    for title, spec in rows.items():
        painting = make_painting(title=title, label=spec["label"], mislabel_score=spec["score"])
        if spec["probs"] == "none":
            continue
        predict(painting, version, spec["probs"], Status.PENDING if spec["probs"] is None else Status.DONE)
    return version


def titles(response) -> list[str]:
    assert response.status_code == 200
    return [p.title for p in response.context["page"].object_list]


def test_margin_puts_the_closest_call_first_not_the_lowest_confidence(curator_client, queue):
    response = curator_client.get(URL, {"order": "margin"})

    assert titles(response) == ["close-call", "spread", "agreeing", "sure"]
    margins = [round(p.pred_margin, 4) for p in response.context["page"].object_list]
    assert margins == [0.05, 0.10, 0.50, 0.84]


def test_margin_is_the_default_and_an_unknown_order_falls_back_to_it(curator_client, queue):
    assert titles(curator_client.get(URL)) == titles(curator_client.get(URL, {"order": "sideways"}))
    assert titles(curator_client.get(URL))[0] == "close-call"


@pytest.mark.parametrize("classes", [2, 5, 12])
def test_the_margin_is_top_one_minus_top_two_for_any_number_of_classes(classes):
    version = make_model_version("many", class_names=[f"c{i}" for i in range(classes)])
    rng = np.random.default_rng(classes)
    expected = {}
    for _ in range(8):
        probs = rng.dirichlet(np.ones(classes))
        painting = make_painting()
        predict(painting, version, {f"c{i}": float(p) for i, p in enumerate(probs)})
        top = np.sort(probs)[::-1]
        expected[painting.pk] = top[0] - top[1]

    rows = list(Painting.objects.review("margin"))

    assert [p.pk for p in rows] == sorted(expected, key=expected.get)
    assert all(abs(p.pred_margin - expected[p.pk]) < 1e-9 for p in rows)


def test_disagree_lists_finished_predictions_against_the_label_most_confident_first(curator_client, queue):
    assert titles(curator_client.get(URL, {"order": "disagree"})) == ["sure", "close-call"]


def test_mislabelled_orders_by_score_with_the_unscored_last(curator_client, queue):
    response = curator_client.get(URL, {"order": "mislabelled"})

    assert titles(response) == ["sure", "close-call", "agreeing", "unpredicted"]
    assert "No mislabel scores yet" not in response.content.decode()


def test_mislabelled_says_so_when_no_training_has_scored_the_set(curator_client, queue):
    Painting.objects.update(mislabel_score=None)

    response = curator_client.get(URL, {"order": "mislabelled"})

    assert "No mislabel scores yet" in response.content.decode()
    assert set(titles(response)) == {"close-call", "sure", "unpredicted", "agreeing"}


def test_unlabelled_lists_paintings_without_a_label_most_confident_first(curator_client, queue):
    assert titles(curator_client.get(URL, {"order": "unlabelled"})) == ["spread", "pending"]


def test_each_row_shows_the_probabilities_margin_label_and_an_accept_button(curator_client, queue):
    body = curator_client.get(URL, {"order": "margin"}).content.decode()

    row = body[body.index(">close-call<") :]
    row = row[: row.index("</li>\n", row.index("review-actions"))]
    for text in ("50.0%", "45.0%", "5.0%", "margin 5.0%", "jp", "Accept “cn”"):
        assert text in row
    bars = [row.index(f'<span class="bar-name">{name}</span>') for name in ("cn", "jp", "kr")]
    assert bars == sorted(bars)  # most probable first
    assert 'name="ids"' in body and 'id="bulk-form"' in body


def test_accept_prediction_labels_the_painting_and_returns_to_the_queue(curator_client, queue):
    spread = Painting.objects.get(title="spread")
    back = URL + "?order=unlabelled&page=1"

    response = curator_client.post(reverse("gallery:accept_prediction", args=[spread.pk]), {"next": back})

    assert response.status_code == 302 and response["Location"] == back
    assert Painting.objects.get(pk=spread.pk).label == "kr"
    change = LabelChange.objects.get(painting=spread)
    assert (change.old_label, change.new_label) == (None, "kr")
    assert "v1" in change.reason and change.changed_by.username == "mina"
    assert "spread" not in titles(curator_client.get(back))


def test_accept_prediction_overrides_a_disagreeing_label(curator_client, queue):
    sure = Painting.objects.get(title="sure")

    curator_client.post(reverse("gallery:accept_prediction", args=[sure.pk]))

    assert Painting.objects.get(pk=sure.pk).label == "jp"
    assert "sure" not in titles(curator_client.get(URL, {"order": "disagree"}))


def test_accept_without_a_finished_prediction_changes_nothing(curator_client, queue):
    pending = Painting.objects.get(title="pending")

    response = curator_client.post(reverse("gallery:accept_prediction", args=[pending.pk]), follow=True)

    assert "no finished prediction to accept" in response.content.decode()
    assert Painting.objects.get(pk=pending.pk).label is None and not LabelChange.objects.exists()


def test_the_queue_is_paginated_and_keeps_its_order_across_pages(curator_client):
    version = make_model_version()
    for n in range(30):
        predict(make_painting(title=f"p{n:02}"), version, {"cn": 0.5 + n / 100, "jp": 0.5 - n / 100})

    first = curator_client.get(URL, {"order": "margin"})
    second = curator_client.get(URL, {"order": "margin", "page": 2})

    assert titles(first) == [f"p{n:02}" for n in range(25)]
    assert titles(second) == [f"p{n:02}" for n in range(25, 30)]
    assert "order=margin&amp;page=2" in first.content.decode()


def test_a_page_of_the_queue_costs_a_fixed_number_of_queries(curator_client, django_assert_max_num_queries):
    version = make_model_version()
    for n in range(30):
        predict(make_painting(label="jp"), version, {"cn": 0.5 + n / 100, "jp": 0.5 - n / 100})

    with django_assert_max_num_queries(12):
        response = curator_client.get(URL, {"order": "disagree"})

    assert len(titles(response)) == 25


def test_without_an_active_model_the_queue_says_so(curator_client):
    make_painting()

    response = curator_client.get(URL)

    assert titles(response) == []
    assert "No model is active" in response.content.decode()

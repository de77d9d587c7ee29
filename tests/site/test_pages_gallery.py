"""The gallery page: the grid, its filters, pagination, the no-model banner and the Korean switch."""

import pytest
from django.urls import reverse

from classifier.models import Prediction, Status

from .factory import make_model_version, make_painting, make_prediction

pytestmark = pytest.mark.django_db

URL = reverse("gallery:list")


def shown(response) -> list[str]:
    """Titles of the paintings on the page, in order."""
    return [p.title for p in response.context["page"].object_list]


@pytest.fixture
def collection():
    """Six paintings covering every filter: classes, labels, agreement, statuses, confidences."""
    version = make_model_version("v1", class_names=("cn", "jp"))
    rows = {
        "agree-cn": dict(label="cn", pred=("cn", 0.95, Status.DONE), artist="Guo Xi"),
        "disagree": dict(label="jp", pred=("cn", 0.55, Status.DONE), artist="Sesshu"),
        "unlabelled-jp": dict(label=None, pred=("jp", 0.75, Status.DONE), artist="Tohaku"),
        "pending": dict(label=None, pred=("", None, Status.PENDING), artist=""),
        "failed": dict(label="cn", pred=("", None, Status.FAILED), artist=""),
        "no-prediction": dict(label=None, pred=None, artist=""),
    }
    for title, spec in rows.items():
        painting = make_painting(title=title, label=spec["label"], artist=spec["artist"])
        if spec["pred"] is None:
            continue
        label, confidence, status = spec["pred"]
        if status == Status.DONE:
            make_prediction(painting, version, label=label, confidence=confidence)
        else:
            Prediction.objects.create(painting=painting, model_version=version, status=status)
    return version


def test_the_grid_shows_each_paintings_prediction_confidence_and_label(client, collection):
    response = client.get(URL)

    assert response.status_code == 200
    body = response.content.decode()
    assert set(shown(response)) == {
        "agree-cn",
        "disagree",
        "unlabelled-jp",
        "pending",
        "failed",
        "no-prediction",
    }
    assert "95%" in body and "55%" in body and "75%" in body
    assert "Guo Xi" in body
    assert "waiting" in body and "failed" in body and "no prediction" in body
    assert body.count('class="tag tag-label"') == 3  # agree-cn, disagree, failed carry a curated label


def test_only_a_disagreement_between_label_and_prediction_is_marked(client, collection):
    response = client.get(URL)

    marked = [p.title for p in response.context["page"].object_list if p.prediction_disagrees]
    assert marked == ["disagree"]
    assert response.content.decode().count("card-disagrees") == 1


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"predicted": "cn"}, {"agree-cn", "disagree"}),
        ({"predicted": "jp"}, {"unlabelled-jp"}),
        ({"label": "cn"}, {"agree-cn", "failed"}),
        ({"agreement": "agree"}, {"agree-cn"}),
        ({"agreement": "disagree"}, {"disagree"}),
        ({"agreement": "unlabelled"}, {"unlabelled-jp", "pending", "no-prediction"}),
        ({"status": "pending"}, {"pending"}),
        ({"status": "failed"}, {"failed"}),
        ({"status": "done"}, {"agree-cn", "disagree", "unlabelled-jp"}),
        ({"status": "none"}, {"no-prediction"}),
        ({"min_conf": "70"}, {"agree-cn", "unlabelled-jp"}),
        ({"min_conf": "60", "max_conf": "80"}, {"unlabelled-jp"}),
        ({"q": "guo"}, {"agree-cn"}),
        ({"q": "disag"}, {"disagree"}),
        ({"predicted": "cn", "agreement": "agree"}, {"agree-cn"}),
    ],
)
def test_filters_narrow_the_grid(client, collection, params, expected):
    response = client.get(URL, params)

    assert response.status_code == 200
    assert set(shown(response)) == expected


def test_sorting_by_confidence_puts_paintings_without_one_last(client, collection):
    most = shown(client.get(URL, {"sort": "-confidence"}))
    least = shown(client.get(URL, {"sort": "confidence"}))

    assert most[:3] == ["agree-cn", "unlabelled-jp", "disagree"]
    assert least[:3] == ["disagree", "unlabelled-jp", "agree-cn"]


def test_the_filter_form_keeps_the_chosen_filters(client, collection):
    body = client.get(URL, {"q": "guo", "predicted": "cn", "sort": "oldest"}).content.decode()

    assert 'value="guo"' in body
    assert '<option value="cn" selected>cn</option>' in body
    assert '<option value="oldest" selected>' in body


def test_class_choices_are_the_active_models_classes_and_every_label_in_use(client, collection):
    make_painting(title="korean", label="kr")

    form = client.get(URL).context["form"]

    assert [value for value, _ in form.fields["predicted"].choices] == ["", "cn", "jp", "kr"]
    assert [value for value, _ in form.fields["label"].choices] == ["", "cn", "jp", "kr"]


def test_pagination_links_keep_the_filters(client):
    version = make_model_version()
    for n in range(30):
        make_prediction(make_painting(title=f"cn-{n}"), version, label="cn", confidence=0.9)
    make_prediction(make_painting(title="jp-0"), version, label="jp")

    first = client.get(URL, {"predicted": "cn", "sort": "oldest"})
    body = first.content.decode()

    assert first.context["page"].paginator.count == 30
    assert len(shown(first)) == 24
    assert 'href="?predicted=cn&amp;sort=oldest&amp;page=2"' in body
    second = client.get(URL, {"predicted": "cn", "sort": "oldest", "page": "2"})
    assert shown(second) == [f"cn-{n}" for n in range(24, 30)]
    assert 'href="?predicted=cn&amp;sort=oldest&amp;page=1"' in second.content.decode()


def test_a_malformed_page_or_filter_value_still_renders(client, collection):
    response = client.get(URL, {"page": "abc", "min_conf": "lots", "sort": "sideways", "agreement": "?"})

    assert response.status_code == 200
    assert len(shown(response)) == 6


def test_a_page_of_24_paintings_costs_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    version = make_model_version()
    for n in range(30):
        painting = make_painting(title=f"p{n}", label="jp" if n % 2 else "cn")
        make_prediction(painting, version, label="cn", confidence=0.5 + n / 100)

    # Active model (context processor, browse, class choices), labels in use, count, page: no query per row.
    with django_assert_max_num_queries(7):
        response = client.get(URL)

    assert len(shown(response)) == 24
    assert response.content.decode().count('class="card-link"') == 24


def test_an_empty_collection_says_so(client):
    body = client.get(URL).content.decode()

    assert "The collection is empty." in body


def test_the_no_model_banner_shows_while_no_model_is_active(client):
    make_model_version("inactive", active=False)

    body = client.get(URL).content.decode()

    assert "No model is active" in body
    assert "import_model CHECKPOINT --activate" in body


def test_the_no_model_banner_hides_once_a_model_is_active(client):
    make_model_version("v1", active=True)

    body = client.get(URL).content.decode()

    assert "No model is active" not in body
    assert "Predictions by model v1" in body


def test_the_navigation_follows_who_is_signed_in(client, django_user_model):
    anonymous = client.get(URL).content.decode()
    assert "Sign in" in anonymous and f'href="{reverse("gallery:upload")}"' not in anonymous

    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    signed_in = client.get(URL).content.decode()
    assert reverse("gallery:upload") in signed_in
    assert 'action="/accounts/logout/"' in signed_in
    assert reverse("admin:index") in signed_in
    assert "/api/docs/" in signed_in


def test_switching_to_korean_shows_the_pages_in_korean(client):
    switched = client.post(reverse("set_language"), {"language": "ko", "next": URL})
    assert switched.status_code == 302

    response = client.get(URL)
    body = response.content.decode()

    assert '<html lang="ko">' in body
    assert "갤러리" in body  # "Gallery"
    assert "활성화된 모델이 없습니다" in body  # the no-model banner

"""Relabelling: from the painting's page, in bulk from the gallery, through the API and the admin; the
label history and reverting a change; new classes; refused labels."""

from __future__ import annotations

import pytest
from django.urls import reverse

from gallery.models import LabelChange, Painting

from .factory import make_admin, make_curator, make_model_version, make_painting, make_prediction, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def curator():
    return make_curator("mina")


@pytest.fixture
def curator_client(client, curator):
    client.force_login(curator)
    return client


def relabel(client, painting, **data):
    return client.post(reverse("gallery:relabel", args=[painting.pk]), data)


def fresh(painting: Painting) -> Painting:
    return Painting.objects.get(pk=painting.pk)


# From the painting's page


def test_relabelling_from_the_page_records_who_when_old_new_and_why(curator_client, curator):
    painting = make_painting(label="cn")

    response = relabel(curator_client, painting, label="jp", reason="Kano school seal")

    assert response.status_code == 302 and response["Location"] == painting.get_absolute_url()
    assert fresh(painting).label == "jp"
    change = LabelChange.objects.get(painting=painting)
    assert (change.old_label, change.new_label, change.changed_by, change.reason) == (
        "cn",
        "jp",
        curator,
        "Kano school seal",
    )
    assert change.changed_at is not None


def test_the_page_shows_the_history_newest_first(curator_client):
    painting = make_painting()
    relabel(curator_client, painting, label="cn", reason="first look")
    relabel(curator_client, painting, new_label="jp", reason="signature read")

    body = curator_client.get(painting.get_absolute_url()).content.decode()

    history = body[body.index('id="label-history"') :]
    assert history.index("signature read") < history.index("first look")
    assert history.count(">mina<") == 2
    assert history.count('action="/labels/') == 2  # a revert button per change


def test_visitors_see_the_history_but_no_form_and_no_revert(client, curator):
    painting = make_painting()
    painting.relabel("cn", by=curator, reason="catalogue entry")

    body = client.get(painting.get_absolute_url()).content.decode()

    assert "catalogue entry" in body and ">mina<" in body
    assert reverse("gallery:relabel", args=[painting.pk]) not in body
    assert "/revert/" not in body


def test_relabelling_to_the_same_label_writes_nothing(curator_client):
    painting = make_painting(label="cn")

    response = relabel(curator_client, painting, label="cn")

    assert response.status_code == 302
    assert not LabelChange.objects.exists()


def test_the_clear_button_clears_the_label_as_a_change(curator_client):
    painting = make_painting(label="cn")

    relabel(curator_client, painting, label="cn", clear="1")

    assert fresh(painting).label is None
    change = LabelChange.objects.get()
    assert (change.old_label, change.new_label) == ("cn", None)


def test_choosing_nothing_is_refused_rather_than_clearing(curator_client):
    painting = make_painting(label="cn")

    response = relabel(curator_client, painting, label="", new_label="")

    assert response.status_code == 400
    assert "Choose a class or type a new one." in response.content.decode()
    assert fresh(painting).label == "cn" and not LabelChange.objects.exists()


@pytest.mark.parametrize("bad", ["Korean", "kr!", "k r", "-kr", "x" * 33])
def test_a_label_that_is_not_a_class_name_is_refused_and_nothing_written(curator_client, bad):
    painting = make_painting(label="cn")

    response = relabel(curator_client, painting, new_label=bad)

    assert response.status_code == 400
    body = response.content.decode()
    assert "lower-case letters" in body or "at most 32 characters" in body
    assert fresh(painting).label == "cn" and not LabelChange.objects.exists()


# Reverting


def test_reverting_a_change_is_itself_a_change(curator_client, curator):
    painting = make_painting()
    first = painting.relabel("cn", by=curator)
    second = painting.relabel("jp", by=curator)

    response = curator_client.post(reverse("gallery:revert_label", args=[second.pk]))

    assert response.status_code == 302
    assert fresh(painting).label == "cn"
    revert = LabelChange.objects.exclude(pk__in=[first.pk, second.pk]).get()
    assert (revert.old_label, revert.new_label, revert.reverts, revert.changed_by) == (
        "jp",
        "cn",
        second,
        curator,
    )
    assert LabelChange.objects.filter(painting=painting).count() == 3


def test_reverting_the_first_change_clears_the_label(curator_client, curator):
    painting = make_painting()
    first = painting.relabel("cn", by=curator)

    curator_client.post(reverse("gallery:revert_label", args=[first.pk]))

    assert fresh(painting).label is None


def test_reverting_when_the_label_is_already_back_writes_nothing(curator_client, curator):
    painting = make_painting()
    change = painting.relabel("cn", by=curator)
    painting.relabel(None, by=curator)

    curator_client.post(reverse("gallery:revert_label", args=[change.pk]))

    assert LabelChange.objects.count() == 2


# New classes


def test_a_new_class_is_accepted_and_offered_everywhere(curator_client):
    make_model_version("v1", class_names=("cn", "jp"))
    korean = make_painting(title="Geumgang", label="cn")
    other = make_painting(title="Elsewhere", label="cn")

    relabel(curator_client, korean, new_label="kr", reason="Jeong Seon")

    assert fresh(korean).label == "kr"
    assert "kr" in Painting.objects.class_names()
    gallery = curator_client.get(reverse("gallery:list"))
    assert ("kr", "kr") in gallery.context["form"].fields["label"].choices
    assert '<option value="kr">kr</option>' in gallery.content.decode()  # the bulk bar offers it too
    filtered = curator_client.get(reverse("gallery:list"), {"label": "kr"})
    assert [p.title for p in filtered.context["page"].object_list] == ["Geumgang"]
    page = curator_client.get(other.get_absolute_url())
    assert '<option value="kr">kr</option>' in page.content.decode()


# In bulk, from the gallery


def test_bulk_relabel_writes_one_label_change_per_painting_that_changes(curator_client, curator):
    paintings = [make_painting(label=label) for label in ("cn", None, "jp")]

    response = curator_client.post(
        reverse("gallery:bulk_relabel"),
        {"ids": [p.pk for p in paintings], "label": "jp", "reason": "album of Sesshu", "next": "/?page=2"},
    )

    assert response.status_code == 302 and response["Location"] == "/?page=2"
    assert [fresh(p).label for p in paintings] == ["jp", "jp", "jp"]
    changes = LabelChange.objects.order_by("painting_id")
    assert [(c.painting_id, c.old_label, c.new_label) for c in changes] == [
        (paintings[0].pk, "cn", "jp"),
        (paintings[1].pk, None, "jp"),
    ]
    assert {c.changed_by for c in changes} == {curator} and {c.reason for c in changes} == {"album of Sesshu"}


def test_bulk_relabel_with_a_bad_label_changes_nothing(curator_client):
    paintings = [make_painting(label="cn") for _ in range(2)]

    curator_client.post(
        reverse("gallery:bulk_relabel"), {"ids": [p.pk for p in paintings], "new_label": "KR"}
    )

    assert [fresh(p).label for p in paintings] == ["cn", "cn"]
    assert not LabelChange.objects.exists()


def test_bulk_relabel_with_an_unknown_id_changes_nothing(curator_client):
    painting = make_painting(label="cn")

    curator_client.post(reverse("gallery:bulk_relabel"), {"ids": [painting.pk, 999999], "label": "jp"})

    assert fresh(painting).label == "cn"


def test_bulk_accept_takes_each_prediction_and_skips_those_without(curator_client):
    version = make_model_version()
    cn, jp, none = make_painting(), make_painting(), make_painting(title="No prediction")
    make_prediction(cn, version, label="cn")
    make_prediction(jp, version, label="jp")

    response = curator_client.post(
        reverse("gallery:bulk_relabel"), {"ids": [cn.pk, jp.pk, none.pk], "accept": "1"}, follow=True
    )

    assert (fresh(cn).label, fresh(jp).label, fresh(none).label) == ("cn", "jp", None)
    assert LabelChange.objects.count() == 2
    assert "No prediction" in response.content.decode()  # named among the skipped


def test_a_next_address_off_the_site_is_not_followed(curator_client):
    painting = make_painting()

    response = curator_client.post(
        reverse("gallery:bulk_relabel"), {"ids": [painting.pk], "label": "cn", "next": "https://example.com/"}
    )

    assert response["Location"] == reverse("gallery:list")


def test_gallery_cards_have_selection_boxes_for_curators_only(client, curator):
    for _ in range(3):
        make_painting()
    client.force_login(make_user("hana"))
    assert 'form="bulk-form"' not in client.get(reverse("gallery:list")).content.decode()

    client.force_login(curator)
    body = client.get(reverse("gallery:list")).content.decode()

    assert body.count('name="ids"') == 3 and 'id="bulk-form"' in body


def test_the_gallery_page_for_a_curator_costs_a_fixed_number_of_queries(
    client, curator, django_assert_max_num_queries
):
    version = make_model_version()
    for _ in range(30):
        make_prediction(make_painting(label="cn"), version, label="jp", confidence=0.6)
    client.force_login(curator)

    # A visitor's queries, plus the session, the user and one is-curator question for the whole page.
    with django_assert_max_num_queries(9):
        response = client.get(reverse("gallery:list"))

    assert response.content.decode().count('name="ids"') == 24


# Through the API


def test_the_api_relabels_one_painting(curator_client, curator):
    painting = make_painting(label="cn")

    response = curator_client.post(
        f"/api/paintings/{painting.pk}/relabel/",
        {"label": "kr", "reason": "Joseon"},
        content_type="application/json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["changed"] is True and body["painting"]["label"] == "kr"
    assert body["change"]["old_label"] == "cn" and body["change"]["new_label"] == "kr"
    assert body["change"]["changed_by"] == "mina" and body["change"]["reason"] == "Joseon"
    assert fresh(painting).label == "kr"


def test_the_api_clears_a_label_with_an_empty_one_and_requires_the_field(curator_client):
    painting = make_painting(label="cn")
    url = f"/api/paintings/{painting.pk}/relabel/"

    missing = curator_client.post(url, {}, content_type="application/json")
    cleared = curator_client.post(url, {"label": None}, content_type="application/json")

    assert missing.status_code == 400 and "label" in missing.json()
    assert cleared.status_code == 200 and fresh(painting).label is None


def test_the_api_refuses_a_bad_label_saying_why(curator_client):
    painting = make_painting(label="cn")

    response = curator_client.post(
        f"/api/paintings/{painting.pk}/relabel/", {"label": "Korean"}, content_type="application/json"
    )

    assert response.status_code == 400
    assert "lower-case letters" in response.json()["label"][0]
    assert fresh(painting).label == "cn"


def test_the_api_relabels_in_bulk_one_change_each(curator_client):
    paintings = [make_painting(label=label) for label in ("cn", "kr", None)]

    response = curator_client.post(
        "/api/paintings/relabel/",
        {"ids": [p.pk for p in paintings], "label": "kr"},
        content_type="application/json",
    )

    assert response.status_code == 200
    assert response.json()["changed"] == 2 and response.json()["unchanged"] == 1
    assert [c["painting"] for c in response.json()["changes"]] == [paintings[0].pk, paintings[2].pk]
    assert LabelChange.objects.count() == 2


def test_the_api_bulk_relabel_refuses_unknown_ids_and_changes_nothing(curator_client):
    painting = make_painting(label="cn")

    response = curator_client.post(
        "/api/paintings/relabel/",
        {"ids": [painting.pk, 424242], "label": "jp"},
        content_type="application/json",
    )

    assert response.status_code == 400 and "424242" in response.json()["ids"][0]
    assert fresh(painting).label == "cn"


# From the admin


def test_the_admin_action_asks_for_the_class_then_relabels_the_selection(client):
    admin = make_admin()
    client.force_login(admin)
    paintings = [make_painting(label="cn"), make_painting()]
    url = reverse("admin:gallery_painting_changelist")
    selected = {"action": "set_label", "_selected_action": [p.pk for p in paintings]}

    form_page = client.post(url, selected)
    assert form_page.status_code == 200
    assert "Set curated label" in form_page.content.decode()
    assert [fresh(p).label for p in paintings] == ["cn", None]  # nothing yet

    done = client.post(url, {**selected, "apply": "1", "new_label": "kr", "reason": "from the admin"})

    assert done.status_code == 302
    assert [fresh(p).label for p in paintings] == ["kr", "kr"]
    assert set(LabelChange.objects.values_list("changed_by", "reason")) == {(admin.pk, "from the admin")}


def test_the_admin_action_shows_the_form_again_for_a_bad_label(client):
    client.force_login(make_admin())
    painting = make_painting(label="cn")

    response = client.post(
        reverse("admin:gallery_painting_changelist"),
        {"action": "set_label", "_selected_action": [painting.pk], "apply": "1", "new_label": "Not A Class"},
    )

    assert response.status_code == 200 and "lower-case letters" in response.content.decode()
    assert fresh(painting).label == "cn"


def test_the_admin_change_form_does_not_edit_the_label_around_the_history(client):
    client.force_login(make_admin())
    painting = make_painting(label="cn")

    page = client.get(reverse("admin:gallery_painting_change", args=[painting.pk])).content.decode()

    assert 'name="label"' not in page

"""Duplicates: finding pairs (difference hash, embeddings), the command, the page, merge and dismiss."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse
from PIL import Image

from classifier.models import Prediction, Status
from gallery.duplicates import EMBEDDING_MIN_COSINE, find_duplicates
from gallery.models import DatasetItem, DatasetVersion, DuplicatePair, LabelChange, Painting
from gallery.uploads import inspect_image, save_painting

from .factory import make_curator, make_model_version, make_painting

pytestmark = pytest.mark.django_db


def landscape(seed: int, size=(480, 360)) -> Image.Image:
    """A smooth picture (broad areas of colour, like a painting), different for each seed."""
    coarse = np.random.default_rng(seed).integers(0, 255, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)


def encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture
def curator():
    return make_curator("mina")


@pytest.fixture
def curator_client(client, curator):
    client.force_login(curator)
    return client


def pairs() -> set[tuple[int, int, str]]:
    return set(DuplicatePair.objects.values_list("a", "b", "kind"))


# Finding pairs


def test_a_resized_reencode_of_the_same_picture_is_a_dhash_pair():
    original, _ = save_painting(encode(landscape(1)), "original.png")
    copy, _ = save_painting(encode(landscape(1).resize((240, 180)), "JPEG", quality=60), "copy.jpg")
    other, _ = save_painting(encode(landscape(2)), "other.png")

    search = find_duplicates()

    assert pairs() == {(original.pk, copy.pk, "dhash")}
    pair = DuplicatePair.objects.get()
    assert pair.distance <= 12 and pair.status == DuplicatePair.Status.OPEN
    assert search.created == 1 and search.dhash_pairs == 1


def test_paintings_without_a_dhash_get_one_from_their_image_file_and_keep_it():
    data = encode(landscape(3))
    painting = make_painting(data=data)  # rows made without the upload path have no hash
    assert painting.dhash == ""

    search = find_duplicates()

    painting.refresh_from_db()
    assert painting.dhash == inspect_image(data).dhash  # the same hash an upload computes
    assert search.hashed == 1


def test_an_unreadable_image_is_reported_and_left_out():
    broken = make_painting()
    Path(broken.image.path).write_bytes(b"not an image")
    make_painting()

    search = find_duplicates()

    assert [pk for pk, _ in search.unreadable] == [broken.pk]
    assert Painting.objects.get(pk=broken.pk).dhash == ""


def embedded(version, vector: np.ndarray, dhash: str) -> Painting:
    painting = make_painting(dhash=dhash)
    Prediction.objects.create(
        painting=painting,
        model_version=version,
        status=Status.DONE,
        label="cn",
        confidence=0.9,
        probabilities={"cn": 0.9, "jp": 0.1},
        embedding=vector.astype(np.float32).tobytes(),
    )
    return painting


def test_an_embedding_pair_is_found_above_the_threshold_and_not_just_below():
    version = make_model_version()
    rng = np.random.default_rng(0)
    v = rng.normal(size=512)
    far_hashes = iter(["0" * 32, "f" * 32, "0f" * 16, "f0" * 16])
    rescan = embedded(version, v, next(far_hashes))
    twin = embedded(version, v + rng.normal(size=512) * 0.05, next(far_hashes))  # cosine about 0.999
    embedded(version, rng.normal(size=512), next(far_hashes))  # a stranger
    # cosine just under the threshold: stays out
    w = rng.normal(size=512)
    w -= w @ v / (v @ v) * v
    angle = np.arccos(EMBEDDING_MIN_COSINE - 0.005)
    embedded(
        version, np.cos(angle) * v / np.linalg.norm(v) + np.sin(angle) * w / np.linalg.norm(w), "3c" * 16
    )

    search = find_duplicates()

    assert pairs() == {(rescan.pk, twin.pk, "embedding")}
    assert DuplicatePair.objects.get().distance == pytest.approx(1 - 0.9988, abs=2e-3)
    assert search.embedding_pairs == 1


def test_a_pair_both_signals_find_is_listed_once_as_a_dhash_pair():
    version = make_model_version()
    v = np.random.default_rng(1).normal(size=64)
    a = embedded(version, v, "ab" * 16)
    b = embedded(version, v, "ab" * 16)

    find_duplicates()

    assert pairs() == {(a.pk, b.pk, "dhash")}


def test_only_the_active_versions_finished_embeddings_count():
    old = make_model_version("old", active=False)
    v = np.random.default_rng(2).normal(size=64)
    embedded(old, v, "0" * 32)
    embedded(old, v, "f" * 32)
    make_model_version("new")

    find_duplicates()

    assert pairs() == set()


def test_searching_again_adds_nothing_and_a_dismissed_pair_stays_dismissed(curator):
    save_painting(encode(landscape(4)), "a.png")
    save_painting(encode(landscape(4), "JPEG", quality=70), "b.jpg")
    find_duplicates()
    DuplicatePair.objects.get().dismiss(by=curator)

    search = find_duplicates()

    assert search.created == 0 and search.dhash_pairs == 1
    assert DuplicatePair.objects.get().status == DuplicatePair.Status.DISMISSED


def test_the_command_reports_and_its_dry_run_writes_nothing():
    painting = make_painting(data=encode(landscape(5)))
    make_painting(data=encode(landscape(5), "JPEG", quality=50))
    out = io.StringIO()

    call_command("find_duplicates", "--dry-run", stdout=out, stderr=io.StringIO())

    assert "Dry run" in out.getvalue() and "1 dHash pairs" in out.getvalue()
    assert pairs() == set() and Painting.objects.get(pk=painting.pk).dhash == ""

    out = io.StringIO()
    call_command("find_duplicates", stdout=out, stderr=io.StringIO())

    assert "1 new pairs to review" in out.getvalue()
    assert len(pairs()) == 1


# Merge


@pytest.fixture
def pair(curator):
    """Two copies of one work, each with a label history of its own."""
    a = make_painting(title="Travellers", artist="", source="")
    b = make_painting(title="Travellers (rescan)", artist="Fan Kuan", source="NPM")
    a.relabel("cn", by=curator, reason="first import")
    b.relabel("jp", by=curator, reason="mistaken")
    b.relabel("cn", by=curator, reason="corrected")
    return DuplicatePair.objects.create(a=a, b=b, kind=DuplicatePair.Kind.DHASH, distance=4)


def test_merge_keeps_the_kept_label_and_gathers_both_histories(
    pair, curator, django_capture_on_commit_callbacks
):
    a, b = pair.a, pair.b
    b_files = [Path(b.image.path), Path(b.thumbnail.path)]
    Painting.objects.filter(pk=b.pk).update(label="jp")  # the two disagree; the kept one's label stays

    with django_capture_on_commit_callbacks(execute=True):
        kept = pair.merge(a, by=curator)

    assert kept.pk == a.pk and Painting.objects.get(pk=a.pk).label == "cn"
    assert not Painting.objects.filter(pk=b.pk).exists()
    assert not any(f.exists() for f in b_files) and Path(a.image.path).exists()
    history = list(LabelChange.objects.filter(painting=a).values_list("reason", flat=True))
    assert sorted(history) == ["corrected", "first import", "mistaken"]
    record = DuplicatePair.objects.get(pk=pair.pk)  # the pair stays as the record of the merge
    assert record.status == DuplicatePair.Status.MERGED and record.decided_by == curator
    assert record.a_id == a.pk and record.b_id is None
    assert f"removed painting {b.pk}" in record.note and f"kept painting {a.pk}" in record.note


def test_merge_moves_the_removed_paintings_other_pairs_to_the_kept_one(pair, curator):
    a, b = pair.a, pair.b
    c, d = make_painting(title="Third copy"), make_painting(title="Fourth copy")
    with_c = DuplicatePair.objects.create(a=b, b=c, kind=DuplicatePair.Kind.DHASH, distance=6)
    with_d = DuplicatePair.objects.create(a=b, b=d, kind=DuplicatePair.Kind.DHASH, distance=7)
    DuplicatePair.objects.create(a=a, b=d, kind=DuplicatePair.Kind.DHASH, distance=5)  # already paired

    pair.merge(a, by=curator)

    moved = DuplicatePair.objects.get(pk=with_c.pk)
    assert (moved.a_id, moved.b_id, moved.status) == (a.pk, c.pk, DuplicatePair.Status.OPEN)
    assert not DuplicatePair.objects.filter(pk=with_d.pk).exists()  # would repeat (a, d)
    assert DuplicatePair.objects.filter(a=a, b=d).count() == 1


def test_merge_takes_the_other_label_when_the_kept_one_has_none(pair, curator):
    a, b = pair.a, pair.b
    Painting.objects.filter(pk=a.pk).update(label=None)

    pair.merge(a, by=curator)

    assert Painting.objects.get(pk=a.pk).label == "cn"
    taken = LabelChange.objects.filter(painting=a).order_by("-changed_at", "-id").first()
    assert (taken.old_label, taken.new_label, taken.changed_by) == (None, "cn", curator)
    assert str(b.pk) in taken.reason


def test_merge_copies_missing_metadata_and_keeps_what_the_kept_one_has(pair, curator):
    pair.merge(pair.a, by=curator)

    kept = Painting.objects.get(pk=pair.a_id)
    assert (kept.title, kept.artist, kept.source) == ("Travellers", "Fan Kuan", "NPM")


def test_merge_refuses_to_remove_a_painting_a_dataset_version_holds(pair, curator):
    version = DatasetVersion.objects.create(name="v1")
    DatasetItem.objects.create(dataset_version=version, painting=pair.b, label="cn", split="train")

    with pytest.raises(ValidationError, match="dataset version v1"):
        pair.merge(pair.a, by=curator)

    assert Painting.objects.filter(pk=pair.b_id).exists()
    assert LabelChange.objects.filter(painting=pair.b).count() == 2
    assert DuplicatePair.objects.get(pk=pair.pk).status == DuplicatePair.Status.OPEN


def test_merge_refuses_a_painting_outside_the_pair(pair, curator):
    with pytest.raises(ValidationError):
        pair.merge(make_painting(), by=curator)
    assert Painting.objects.filter(pk__in=[pair.a_id, pair.b_id]).count() == 2


# The page


def test_the_page_lists_open_pairs_side_by_side_suggesting_the_larger_image(curator_client, pair):
    Painting.objects.filter(pk=pair.b_id).update(width=4000, height=3000)
    DuplicatePair.objects.create(
        a=make_painting(title="Gone"), b=make_painting(), kind="dhash", distance=1, status="dismissed"
    )

    response = curator_client.get(reverse("gallery:duplicates"))
    body = response.content.decode()

    assert response.status_code == 200
    assert "Travellers (rescan)" in body and "Fan Kuan" in body and "Gone" not in body
    assert "4 bits apart" in body and "near-identical image" in body
    assert f'value="{pair.b_id}" checked' in body and f'value="{pair.a_id}" checked' not in body
    assert "1 dismissed pair is not listed again." in body


def test_merging_from_the_page_keeps_the_chosen_painting(curator_client, pair):
    response = curator_client.post(reverse("gallery:merge_duplicates", args=[pair.pk]), {"keep": pair.b_id})

    assert response.status_code == 302 and response["Location"] == reverse("gallery:duplicates")
    assert not Painting.objects.filter(pk=pair.a_id).exists()
    assert LabelChange.objects.filter(painting_id=pair.b_id).count() == 3


def test_merging_without_a_choice_changes_nothing(curator_client, pair):
    curator_client.post(reverse("gallery:merge_duplicates", args=[pair.pk]), {"keep": "12345"})

    assert Painting.objects.filter(pk__in=[pair.a_id, pair.b_id]).count() == 2


def test_dismissing_from_the_page_records_who_and_hides_the_pair(curator_client, curator, pair):
    response = curator_client.post(reverse("gallery:dismiss_duplicates", args=[pair.pk]))

    assert response.status_code == 302
    pair.refresh_from_db()
    assert pair.status == DuplicatePair.Status.DISMISSED and pair.decided_by == curator and pair.decided_at
    assert "Travellers (rescan)" not in curator_client.get(reverse("gallery:duplicates")).content.decode()
    assert Painting.objects.filter(pk__in=[pair.a_id, pair.b_id]).count() == 2


def test_the_search_button_runs_the_search_in_the_request(curator_client):
    save_painting(encode(landscape(6)), "a.png")
    save_painting(encode(landscape(6).resize((300, 225))), "b.png")

    response = curator_client.post(reverse("gallery:search_duplicates"), follow=True)

    assert "1 new pair to review" in response.content.decode()
    assert len(pairs()) == 1


def test_the_search_button_defers_to_the_command_for_a_large_collection(curator_client, monkeypatch):
    monkeypatch.setattr("gallery.views_curation.IN_PROCESS_LIMIT", 1)
    save_painting(encode(landscape(7)), "a.png")
    save_painting(encode(landscape(7), "JPEG"), "b.jpg")

    response = curator_client.post(reverse("gallery:search_duplicates"), follow=True)

    assert "manage.py find_duplicates" in response.content.decode()
    assert pairs() == set()

"""gallery.uploads: what is accepted, what is refused and why, and that nothing half-written remains."""

import io
import zipfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from classifier.models import Prediction, Status
from gallery.models import Painting
from gallery.uploads import UploadRefused, accept_uploads, inspect_image, save_painting

from .factory import image_bytes, make_model_version

pytestmark = pytest.mark.django_db


def _files(media_root):
    return sorted(p for p in media_root.rglob("*") if p.is_file()) if media_root.exists() else []


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF"])
def test_every_accepted_format_is_stored_with_its_original_bytes(fmt, media_in_tmp):
    data = image_bytes(fmt)
    painting, created = save_painting(data, f"scan.{fmt.lower()}")
    assert created and painting.format == fmt
    assert painting.image.read() == data
    assert (painting.width, painting.height) == (320, 240)
    assert Image.open(painting.thumbnail.path).format == "JPEG"


@pytest.mark.parametrize(
    "mode,kw",
    [
        ("CMYK", {"fmt": "JPEG"}),
        ("P", {"fmt": "PNG"}),
        ("L", {"fmt": "PNG"}),
        ("RGBA", {"fmt": "PNG"}),
        ("LA", {"fmt": "PNG"}),
    ],
)
def test_odd_colour_modes_are_handled(mode, kw):
    painting, _ = save_painting(image_bytes(kw["fmt"], mode=mode), "odd")
    assert Image.open(painting.thumbnail.path).mode == "RGB"


def test_sixteen_bit_greyscale_is_handled():
    buf = io.BytesIO()
    Image.fromarray(np.full((100, 120), 40000, dtype=np.uint16)).save(buf, format="PNG")
    painting, _ = save_painting(buf.getvalue(), "deep.png")
    assert Image.open(painting.thumbnail.path).getpixel((0, 0))[0] > 100


def test_exif_orientation_is_applied_to_the_stored_size():
    exif = Image.Exif()
    exif[0x0112] = 6
    data = image_bytes("JPEG", size=(300, 100), exif=exif)
    painting, _ = save_painting(data, "rotated.jpg")
    assert (painting.width, painting.height) == (100, 300)
    assert painting.image.read() == data  # the original is kept as uploaded


def test_a_handscroll_of_twenty_to_one_is_accepted():
    painting, created = save_painting(image_bytes("JPEG", size=(2000, 100)), "scroll.jpg")
    assert created and painting.width == 2000


def test_the_same_file_twice_leads_to_the_existing_painting(media_in_tmp):
    data = image_bytes("PNG", seed=3)
    first, created = save_painting(data, "a.png")
    files_before = _files(media_in_tmp)
    again, created_again = save_painting(data, "b.png")
    assert created and not created_again and again.pk == first.pk
    assert Painting.objects.count() == 1 and _files(media_in_tmp) == files_before


def _truncated() -> bytes:
    return image_bytes("JPEG", size=(400, 400))[:1500]


def _bomb() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (12000, 12000)).save(buf, format="PNG")
    return buf.getvalue()


REFUSED = {
    "empty": (b"", "empty"),
    "text renamed .jpg": (b"hello, I am text" * 20, "not an image"),
    "pdf": (b"%PDF-1.4\n" + b"0" * 500, "not an image"),
    "truncated jpeg": (_truncated(), "damaged or truncated"),
    "unsupported format (ICO)": (image_bytes("ICO", size=(64, 64)), "not accepted"),
    "too small": (image_bytes("PNG", size=(20, 20)), "at least"),
    "too long (30:1)": (image_bytes("PNG", size=(3000, 100)), "ratio"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_uploads_say_why_and_write_nothing(name, media_in_tmp):
    data, words = REFUSED[name]
    with pytest.raises(UploadRefused) as refused:
        save_painting(data, "upload.jpg")
    assert words in " ".join(refused.value.messages)
    assert Painting.objects.count() == 0 and _files(media_in_tmp) == []


def test_file_size_and_pixel_limits_are_configurable(settings):
    settings.UPLOAD_MAX_BYTES = 1000
    with pytest.raises(UploadRefused, match="limit is"):
        inspect_image(image_bytes("PNG"))
    settings.UPLOAD_MAX_BYTES = 30 * 2**20
    settings.UPLOAD_MAX_PIXELS = 100 * 100
    with pytest.raises(UploadRefused, match="megapixels"):
        inspect_image(image_bytes("PNG", size=(200, 200)))


def test_a_decompression_bomb_is_refused_before_decoding(settings):
    settings.UPLOAD_MAX_PIXELS = 50_000_000
    with pytest.raises(UploadRefused, match="megapixels"):
        inspect_image(_bomb())


def test_a_zip_is_unpacked_and_each_file_gets_its_outcome():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("album/one.jpg", image_bytes("JPEG", seed=1))
        z.writestr("album/two.png", image_bytes("PNG", seed=2))
        z.writestr("album/notes.txt", "not a painting")
        z.writestr("__MACOSX/album/._one.jpg", "resource fork")
    results = accept_uploads([SimpleUploadedFile("album.zip", buf.getvalue())])
    outcome = {r.name: (r.ok, r.error) for r in results}
    assert outcome["album/one.jpg"][0] and outcome["album/two.png"][0]
    assert not outcome["album/notes.txt"][0] and "not an image" in outcome["album/notes.txt"][1]
    assert len(results) == 3 and Painting.objects.count() == 2


def test_upload_waits_without_a_model_and_queues_with_one(django_capture_on_commit_callbacks):
    painting, _ = save_painting(image_bytes(seed=7), "a.jpg")
    assert not Prediction.objects.exists()  # no active model: the upload waits
    make_model_version("v1")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        painting2, _ = save_painting(image_bytes(seed=8), "b.jpg")
    prediction = Prediction.objects.get(painting=painting2)
    assert prediction.status == Status.PENDING and len(callbacks) == 1


# The broker-down case (upload succeeds, prediction waits, the sweep queues it) is in test_sweep.py.

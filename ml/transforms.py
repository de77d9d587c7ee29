"""Image transforms, defined once for training, evaluation, inference and the shortcut check.

``study`` is exactly the original paper's pipeline::

    train: Resize((224, 224)), RandomHorizontalFlip, ToTensor, Normalize(ImageNet mean/std)
    eval:  Resize((224, 224)),                       ToTensor, Normalize(ImageNet mean/std)

``robust`` (the default) puts :class:`DeliveryAugment` in front of the study's training pipeline.
In the shared data every Japanese image arrived as a 224 x 224 JPEG squashed from its original
shape, while the Chinese ones are larger scans, so "how was this file delivered" predicts the class.
DeliveryAugment re-delivers *every* image, whatever its class, in a random way: squashed or
stretched, down- or up-sampled with a random filter, sharpened or softened, JPEG re-encoded at a
random quality. The delivery then carries no information about the class and the network has to
look at the painting. Evaluation is the same for both presets.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable

from PIL import Image, ImageFilter, ImageOps
from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_FILTERS = (
    Image.Resampling.NEAREST,
    Image.Resampling.BOX,
    Image.Resampling.BILINEAR,
    Image.Resampling.BICUBIC,
    Image.Resampling.LANCZOS,
)


def jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


def resize_long_side(im: Image.Image, long_side: int, resample=Image.Resampling.BICUBIC) -> Image.Image:
    scale = long_side / max(im.size)
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    return im.resize(size, resample)


# The two deliveries of the shortcut check (see ml.evaluate). They are fixed, not random.
def reduce_224_jpeg75(im: Image.Image) -> Image.Image:
    """How the Japanese images of the shared data were delivered: squashed to 224 x 224, JPEG q75."""
    return jpeg(im.resize((224, 224), Image.Resampling.BILINEAR), 75)


def upscale_640_sharpen(im: Image.Image) -> Image.Image:
    """A sharp, large scan: upscaled to 640 px on the long side, then unsharp-masked."""
    big = resize_long_side(im, 640, Image.Resampling.BICUBIC)
    return big.filter(ImageFilter.UnsharpMask(radius=2, percent=150, threshold=3))


DELIVERIES: dict[str, Callable[[Image.Image], Image.Image] | None] = {
    "as_delivered": None,
    "reduced_224_jpeg75": reduce_224_jpeg75,
    "upscaled_640_sharpened": upscale_640_sharpen,
}


def to_greyscale(im: Image.Image) -> Image.Image:
    """The same picture without its colour (still 3 channels, as the network expects)."""
    return ImageOps.grayscale(im).convert("RGB")


# The colour check (ml.evaluate): in sansuha-v1 the Chinese images are mostly ink and the Japanese
# ones colour prints, so "has colour" nearly predicts the class. Scoring the test split again in
# greyscale shows how much a model leans on that: one that only learned "ink or print" calls
# every greyed print Chinese. Unseen sources (a Japanese ink landscape, a Chinese blue-green
# landscape) break exactly that rule.
COLOUR_CHECK: dict[str, Callable[[Image.Image], Image.Image] | None] = {
    "as_delivered": None,
    "greyscale": to_greyscale,
}


class DeliveryAugment:
    """Randomly re-deliver an image, identically distributed for every class."""

    def __init__(self, p: float = 0.8, min_side: int = 128, max_side: int = 640) -> None:
        self.p = p
        self.min_side = min_side
        self.max_side = max_side

    def __call__(self, im: Image.Image) -> Image.Image:
        if random.random() > self.p:
            return im
        # 1. Shape: squash to a square (as the Japanese source did) or stretch a little.
        r = random.random()
        if r < 0.3:
            side = max(im.size)
            im = im.resize((side, side), random.choice(_FILTERS))
        elif r < 0.6:
            factor = random.uniform(0.75, 1.33)
            im = im.resize((max(1, round(im.width * factor)), im.height), random.choice(_FILTERS))
        # 2. Resolution: down- or up-sample to a random size with a random filter.
        if random.random() < 0.8:
            im = resize_long_side(im, random.randint(self.min_side, self.max_side), random.choice(_FILTERS))
        # 3. Sharpness: an unsharp mask (a crisp scan) or a slight blur (a soft reproduction).
        r = random.random()
        if r < 0.3:
            im = im.filter(
                ImageFilter.UnsharpMask(
                    radius=random.uniform(1, 3), percent=random.randint(50, 200), threshold=3
                )
            )
        elif r < 0.45:
            im = im.filter(ImageFilter.GaussianBlur(random.uniform(0.3, 1.2)))
        # 4. Compression.
        if random.random() < 0.7:
            im = jpeg(im, random.randint(30, 95))
        return im

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p}, sides={self.min_side}..{self.max_side})"


Stats = tuple[float, float, float]


def eval_transform(
    image_size: int = 224, mean: Stats = IMAGENET_MEAN, std: Stats = IMAGENET_STD
) -> T.Compose:
    return T.Compose([T.Resize((image_size, image_size)), T.ToTensor(), T.Normalize(mean, std)])


def train_transform(
    preset: str = "robust",
    image_size: int = 224,
    mean: Stats = IMAGENET_MEAN,
    std: Stats = IMAGENET_STD,
    greyscale_p: float = 0.0,
) -> T.Compose:
    """``mean``/``std``: ImageNet's (the study's) unless the pretrained weights expect others.
    ``greyscale_p``: with the robust preset, the share of training images shown without colour
    (every class alike), so that colour alone cannot carry the decision."""
    study = [
        T.Resize((image_size, image_size)),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize(mean, std),
    ]
    if preset == "study":
        return T.Compose(study)
    if preset == "robust":
        colour = [T.RandomGrayscale(greyscale_p)] if greyscale_p > 0 else []
        return T.Compose([DeliveryAugment(), *colour, *study])
    raise ValueError(f"unknown preset {preset!r}; choose 'robust' or 'study'")

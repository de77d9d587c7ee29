import numpy as np
from PIL import Image
from torchvision import transforms as T

from ml.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DeliveryAugment,
    eval_transform,
    reduce_224_jpeg75,
    to_greyscale,
    train_transform,
    upscale_640_sharpen,
)


def _describe(compose: T.Compose) -> list[str]:
    return [repr(t) for t in compose.transforms]


def test_study_preset_is_exactly_the_original():
    train = train_transform("study")
    assert [type(t) for t in train.transforms] == [T.Resize, T.RandomHorizontalFlip, T.ToTensor, T.Normalize]
    assert train.transforms[0].size == (224, 224)
    assert train.transforms[1].p == 0.5
    assert tuple(train.transforms[3].mean) == IMAGENET_MEAN and tuple(train.transforms[3].std) == IMAGENET_STD
    evaluation = eval_transform()
    assert [type(t) for t in evaluation.transforms] == [T.Resize, T.ToTensor, T.Normalize]
    assert _describe(evaluation) == [d for d in _describe(train) if "Flip" not in d]


def test_robust_preset_is_the_study_behind_delivery_augmentation():
    robust = train_transform("robust")
    assert isinstance(robust.transforms[0], DeliveryAugment)
    assert _describe(T.Compose(robust.transforms[1:])) == _describe(train_transform("study"))


def test_greyscale_training_share_sits_behind_the_delivery_augmentation_for_every_class():
    robust = train_transform("robust", greyscale_p=0.3)
    assert isinstance(robust.transforms[0], DeliveryAugment)
    assert isinstance(robust.transforms[1], T.RandomGrayscale) and robust.transforms[1].p == 0.3
    assert _describe(T.Compose(robust.transforms[2:])) == _describe(train_transform("study"))
    assert _describe(train_transform("study", greyscale_p=0.3)) == _describe(train_transform("study"))
    grey = to_greyscale(Image.new("RGB", (20, 10), (200, 40, 40)))
    r, g, b = grey.getpixel((0, 0))
    assert grey.mode == "RGB" and grey.size == (20, 10) and r == g == b


def test_delivery_augment_varies_size_and_keeps_rgb():
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 255, (300, 200, 3), dtype=np.uint8))
    augment = DeliveryAugment(p=1.0)
    sizes = {augment(im).size for _ in range(20)}
    assert len(sizes) > 5
    assert all(augment(im).mode == "RGB" for _ in range(5))


def test_shortcut_deliveries_do_what_they_say():
    im = Image.new("RGB", (300, 500), (120, 130, 140))
    assert reduce_224_jpeg75(im).size == (224, 224)
    assert max(upscale_640_sharpen(im).size) == 640
    assert upscale_640_sharpen(im).size[0] == 384  # aspect kept
    assert eval_transform()(im).shape == (3, 224, 224)

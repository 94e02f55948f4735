"""The generated shapes: both styles, their determinism, their look as documented, and bad arguments."""

import pytest
import torch

from vision.data import STYLES, ClassificationData, SyntheticShapes


@pytest.mark.parametrize("style", STYLES)
def test_images_are_deterministic_rgb_in_range_and_balanced(style):
    data = SyntheticShapes(40, image_size=24, num_classes=4, seed=3, split="val", style=style)
    again = SyntheticShapes(40, image_size=24, num_classes=4, seed=3, split="val", style=style)
    images, labels = zip(*(data[i] for i in range(40)), strict=True)
    assert all(x.shape == (3, 24, 24) and x.dtype == torch.float32 for x in images)
    assert all(0 <= float(x.min()) and float(x.max()) <= 1 for x in images)
    assert all(torch.equal(x, again[i][0]) for i, x in enumerate(images))
    assert sorted(labels) == sorted(list(range(4)) * 10)
    other_seed = SyntheticShapes(40, image_size=24, num_classes=4, seed=4, split="val", style=style)
    assert not torch.equal(images[0], other_seed[0][0])


def test_the_styles_look_different():
    """Outlined: a third of the images grey and smooth backgrounds; classic: colour, with pixel-noise textures."""
    n = 240
    classic = torch.stack([SyntheticShapes(n, 32, style="classic")[i][0] for i in range(n)])
    outlined = torch.stack([SyntheticShapes(n, 32, style="outlined")[i][0] for i in range(n)])
    assert not torch.equal(classic[0], outlined[0])

    def grey(x):
        return (x.amax(1) - x.amin(1)).flatten(1).amax(1) < 1e-6

    assert grey(classic).sum() == 0
    assert 0.25 <= grey(outlined).float().mean() <= 0.42  # one in three

    def roughness(x):  # mean absolute difference between horizontal neighbours
        return (x[..., 1:] - x[..., :-1]).abs().mean()

    assert roughness(outlined) < 0.6 * roughness(classic)


def test_bad_style_is_named():
    with pytest.raises(ValueError, match="style.*'sketch'"):
        SyntheticShapes(4, style="sketch")
    with pytest.raises(ValueError, match="synthetic_style.*'sketch'"):
        ClassificationData(synthetic_style="sketch")


def test_data_module_generates_the_style_it_is_given():
    data = ClassificationData(image_size=32, synthetic_train=8, synthetic_val=8, synthetic_style="outlined")
    data.setup("fit")
    assert data.train_set.style == data.val_set.style == "outlined"

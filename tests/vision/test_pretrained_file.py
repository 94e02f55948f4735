"""timm's ways of loading local weights work for our models as for timm's own: `pretrained=True` with
`pretrained_cfg_overlay=dict(file=...)` (safetensors or .pth), and `checkpoint_path=`. Loaded tensors are compared
by name with the file; without a file, pretrained=True says what to pass."""

import pytest
import timm
import torch
from safetensors.torch import save_file

import vision  # noqa: F401  (registers the models)

from .tiny import TINY_HIERARCHICAL, TINY_VIT

SMALL_VIT = TINY_VIT | dict(num_classes=1000)  # the classifier size pretrained_cfg expects


@pytest.fixture(scope="module")
def vit_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    state = timm.create_model("vit_tiny_patch16_224", **SMALL_VIT).state_dict()
    save_file(state, str(folder / "vit.safetensors"))
    torch.save(state, folder / "vit.pth")
    return state, folder


def same_as_file(model: torch.nn.Module, state: dict) -> list[str]:
    own = model.state_dict()
    return [key for key, value in state.items() if key in own and torch.equal(own[key], value)]


@pytest.mark.parametrize("file", ["vit.safetensors", "vit.pth"])
@pytest.mark.parametrize("kind", ["softmax", "nala"])  # kinds that keep the ViT's tensors as they are
def test_pretrained_with_a_local_file_loads_every_tensor_of_a_timm_vit(vit_files, file, kind):
    state, folder = vit_files
    overlay = dict(file=str(folder / file))
    model = timm.create_model(
        "lavit_tiny_patch16_224", pretrained=True, pretrained_cfg_overlay=overlay, attn_kind=kind, **SMALL_VIT
    )
    assert same_as_file(model, state) == list(state)


def test_another_number_of_classes_keeps_the_backbone_and_a_new_head(vit_files):
    state, folder = vit_files
    overlay = dict(file=str(folder / "vit.pth"))
    model = timm.create_model(
        "lavit_tiny_patch16_224", pretrained=True, pretrained_cfg_overlay=overlay, **SMALL_VIT | {"num_classes": 7}
    )
    assert model.head.weight.shape == (7, 32)
    assert same_as_file(model, state) == [key for key in state if not key.startswith("head.")]


def test_checkpoint_path_loads_strictly(vit_files):
    state, folder = vit_files
    model = timm.create_model("lavit_tiny_patch16_224", checkpoint_path=str(folder / "vit.pth"), **SMALL_VIT)
    assert same_as_file(model, state) == list(state)


def test_a_hierarchical_model_round_trips_through_a_file(tmp_path):
    """As for timm's own models, a file with another classifier size says so in the overlay (num_classes)."""
    torch.manual_seed(1)
    saved = timm.create_model("mala_t", **TINY_HIERARCHICAL).eval()
    torch.save(saved.state_dict(), tmp_path / "mala.pth")
    overlay = dict(file=str(tmp_path / "mala.pth"), num_classes=5)
    loaded = timm.create_model("mala_t", pretrained=True, pretrained_cfg_overlay=overlay, **TINY_HIERARCHICAL).eval()
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(saved(x), loaded(x))


def test_another_models_file_is_an_error_and_a_poor_fit_warns(vit_files, tmp_path):
    _, folder = vit_files
    with pytest.raises(ValueError, match="none of the .* tensors in .*vit.pth"):
        overlay = dict(file=str(folder / "vit.pth"))
        timm.create_model("mala_t", pretrained=True, pretrained_cfg_overlay=overlay, **TINY_HIERARCHICAL)
    stem = {k: v for k, v in timm.create_model("mala_t", **TINY_HIERARCHICAL).state_dict().items() if "stem" in k}
    torch.save(stem, tmp_path / "stem.pth")
    with pytest.warns(UserWarning, match="stem.pth filled only"):
        overlay = dict(file=str(tmp_path / "stem.pth"))
        timm.create_model("mala_t", pretrained=True, pretrained_cfg_overlay=overlay, **TINY_HIERARCHICAL)


@pytest.mark.parametrize("name", ["lavit_tiny_patch16_224", "soft_tiny"])
def test_pretrained_without_a_file_says_how_to_give_one(name):
    with pytest.raises(ValueError, match="pretrained_cfg_overlay=dict\\(file=path\\)"):
        timm.create_model(name, pretrained=True)

"""The model shipped before the reid restructuring (issue 19) embeds images as it did then: the expected
embeddings in tests/reid/data/shipped_embeddings.npz were computed by the code before the change
(`python -m tests.reid.test_shipped_embeddings` writes them again). That model is kept as a test file,
tests/reid/data/reid_before_issue19.safetensors; the default model has been retrained since."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

import reid
from tests.saved_outputs import assert_matches_saved

EXPECTED = Path(__file__).with_name("data") / "shipped_embeddings.npz"
MODEL = Path(__file__).with_name("data") / "reid_before_issue19.safetensors"


def inputs() -> np.ndarray:
    """Four small uint8 images [4, 3, 96, 48]: smooth colour ramps plus noise, each different."""
    g = torch.Generator().manual_seed(19)
    y = torch.linspace(0, 1, 96)[:, None].expand(96, 48)
    x = torch.linspace(0, 1, 48)[None].expand(96, 48)
    images = []
    for k in range(4):
        base = torch.stack([(y + 0.2 * k) % 1, x * (k + 1) / 4, 1 - y * x])
        images.append((base * 0.8 + 0.2 * torch.rand(3, 96, 48, generator=g)).clamp(0, 1))
    return (torch.stack(images) * 255).round().to(torch.uint8).numpy()


def compute(images: np.ndarray) -> dict[str, np.ndarray]:
    """Embeddings of the images as a float tensor and as PIL images, by the model shipped before issue 19."""
    model = reid.load_model(MODEL)
    tensor = torch.from_numpy(images).float() / 255
    pil = [Image.fromarray(image.transpose(1, 2, 0)) for image in images]
    return {"tensor": model.embed(tensor).numpy(), "pil": model.embed(pil).numpy()}


def test_shipped_model_embeds_as_before():
    expected = np.load(EXPECTED)
    got = compute(expected["images"])
    assert set(got) == set(expected.files) - {"images"}
    assert_matches_saved(got, expected)


def test_expected_embeddings_tell_the_images_apart():
    expected = np.load(EXPECTED)
    emb = expected["tensor"]
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    similarity = emb @ emb.T
    assert (similarity[~np.eye(len(emb), dtype=bool)] < 0.9999).all()


if __name__ == "__main__":
    EXPECTED.parent.mkdir(exist_ok=True)
    images = inputs()
    np.savez_compressed(EXPECTED, images=images, **compute(images))
    print(f"wrote {EXPECTED}")

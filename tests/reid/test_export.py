"""ONNX export of the BMFN embedding, run with onnxruntime against torch."""

import numpy as np
import pytest
import torch

from reid.export import export_onnx
from reid.models.core_reid import CoreReIDNet
from reid.models.inference import ReIDModel

ort = pytest.importorskip("onnxruntime")
H, W = 64, 32


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    net = CoreReIDNet("resnet_reid_tiny", num_classes=3, input_size=(H, W))
    with torch.no_grad():  # non-trivial BN running statistics
        for _ in range(3):
            net(torch.rand(8, 3, H, W) * 2)
    model = ReIDModel(net).eval()
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "reid.onnx")
    return model, path


@pytest.mark.parametrize("batch", [1, 5])
def test_onnxruntime_matches_torch(exported, batch):
    model, path = exported
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    x = torch.rand(batch, 3, H, W, generator=torch.Generator().manual_seed(batch))
    (got,) = session.run(["embeddings"], {"images": x.numpy()})
    expected = model.embed(x).numpy()
    assert got.shape == (batch, model.feature_dim)
    assert np.abs(got - expected).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)


def test_written_atomically(exported):
    _, path = exported
    assert sorted(p.name for p in path.parent.iterdir()) == ["reid.onnx"]


def test_rejects_small_sizes(exported, tmp_path):
    model, _ = exported
    with pytest.raises(ValueError, match="height, width"):
        export_onnx(model.net, tmp_path / "x.onnx", height=16, width=32)
    assert not (tmp_path / "x.onnx").exists()

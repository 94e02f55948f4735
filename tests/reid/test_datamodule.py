"""ReIDImages (robust image reading, transforms) and ReIDData loaders on tiny Market-style and folder datasets."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.utilities import CombinedLoader
from PIL import Image

from reid.data import ReIDData, ReIDImages, Sample, read_image, train_transform
from reid.data import datasets as reid_datasets

H, W = 32, 16


def jpeg(path: Path, value: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (10, 20), (value, 255 - value, 40)).save(path)


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> tuple[Path, Path]:
    """A Market-1501 folder (8 training ids) and a custom folder dataset (10 training ids, 2-3 cameras each)."""
    market = tmp_path_factory.mktemp("data") / "Market-1501-v15.09.15"
    for pid in range(1, 9):
        for i in range(1 + pid % 4):
            jpeg(market / "bounding_box_train" / f"{pid:04d}_c{1 + i % 6}s1_{i:06d}_01.jpg", pid * 20)
    for pid in (20, 21):
        jpeg(market / "query" / f"{pid:04d}_c1s1_000001_00.jpg")
        jpeg(market / "bounding_box_test" / f"{pid:04d}_c2s1_000002_01.jpg")
    jpeg(market / "bounding_box_test" / "0000_c3s1_000003_01.jpg")
    folder = market.parent / "custom"
    for pid in range(10):
        for i in range(4):
            jpeg(folder / "train" / f"{pid}_c{1 + i % (2 + pid % 2)}_{i}.jpg", pid * 20)
    for name in ("50_c1_q", "51_c1_q"):
        jpeg(folder / "query" / f"{name}.jpg")
    for name in ("50_c2_g", "51_c3_g", "52_c1_g"):
        jpeg(folder / "gallery" / f"{name}.jpg")
    return market, folder


def make(roots, **kwargs) -> ReIDData:
    market, folder = roots
    args = dict(source="market1501", source_root=str(market), height=H, width=W, batch_size=8, num_instances=2)
    args.update(num_workers=0, held_out_fraction=0.3)
    data = ReIDData(**{**args, **kwargs})
    data.setup("fit")
    return data


def test_source_only(roots):
    data = make(roots)
    assert data.source_splits.num_train_pids == 8 and data.target_splits is None
    loader = data.train_dataloader()
    batches = list(loader)
    assert len(batches) == len(loader) > 0
    batch = batches[0]
    assert batch["image"].shape == (8, 3, H, W) and batch["image"].dtype == torch.float32
    assert len(set(batch["pid"].tolist())) == 4 and batch["pid"].dtype == torch.int64
    assert set(batch) == {"image", "pid", "camid", "index", "is_query"}
    val = next(iter(data.val_dataloader()))  # source query + gallery
    assert val["is_query"].tolist() == [True, True, False, False, False]
    assert data.val_dataloader().dataset.num_query == 2
    test = next(iter(data.test_dataloader()))
    assert test["pid"].tolist() == [20, 21, 0, 20, 21] and test["camid"].tolist() == [0, 0, 2, 1, 1]


def test_with_target(roots):
    data = make(roots, target="folder", target_root=str(roots[1]))
    assert len({s.pid for s in data.target_train}) == 7 and len({s.pid for s in data.target_val_query}) == 3
    assert not {s.path for s in data.target_train} & {s.path for s in data.target_val_gallery}
    loaders = data.train_dataloader()
    assert set(loaders) == {"source", "target"} and len(loaders["source"]) == len(loaders["target"])
    combined = CombinedLoader(loaders, mode="max_size_cycle")
    steps = 0
    for batch, _, _ in combined:
        steps += 1
        assert batch["source"]["image"].shape == batch["target"]["image"].shape == (8, 3, H, W)
    assert steps == len(loaders["source"])
    val = data.val_dataloader()
    items = [item for batch in val for item in batch["is_query"].tolist()]
    assert items.count(True) == len(data.target_val_query) and len(items) == len(val.dataset)
    test = next(iter(data.test_dataloader()))
    assert test["pid"].tolist() == [50, 51, 50, 51, 52]
    # the identities held out do not depend on anything but the seed
    assert make(roots, target="folder", target_root=str(roots[1])).target_val_query == data.target_val_query


def test_loader_for_clustering_and_pseudo_labels(roots):
    data = make(roots, target="folder", target_root=str(roots[1]), held_out_fraction=0.0)
    assert data.target_val_query == [] and len(data.target_train) == 40
    features = data.loader(data.target_train, train=False)
    indices = torch.cat([batch["index"] for batch in features])
    assert indices.tolist() == list(range(40))  # in order, every image once
    labels = [i % 5 for i in range(40)]
    batch = next(iter(data.loader(data.target_train, train=True, labels=labels)))
    assert sorted(Counter(batch["pid"].tolist()).values()) == [2, 2, 2, 2]
    assert all(labels[i] == p for i, p in zip(batch["index"].tolist(), batch["pid"].tolist(), strict=True))
    assert data.val_dataloader().dataset.num_query == 2  # no held-out target ids: source query + gallery


def test_cached_images_give_the_same_batches_and_decode_each_file_once(roots, monkeypatch):
    decoded = Counter()
    original = reid_datasets.open_image
    monkeypatch.setattr(reid_datasets, "open_image", lambda path: decoded.update([str(path)]) or original(path))

    def two_epochs_and_validation(data: ReIDData) -> list[torch.Tensor]:
        torch.manual_seed(0)  # the training augmentation's draws
        images = [torch.cat([b["image"] for b in data.train_dataloader()]) for _ in range(2)]
        return images + [torch.cat([b["image"] for b in data.val_dataloader()])]

    plain = two_epochs_and_validation(make(roots))
    assert max(decoded.values()) > 1  # without the cache a file is decoded every time it is read
    files, decoded = set(decoded), Counter()
    cached = two_epochs_and_validation(make(roots, cache_images=True))
    assert all(torch.equal(a, b) for a, b in zip(plain, cached, strict=True))
    assert set(decoded) == files and set(decoded.values()) == {1}


def test_errors(roots, tmp_path):
    market, folder = roots
    with pytest.raises(ValueError, match="unknown dataset 'duke'.*market1501, cuhk03np, msmt17, folder"):
        ReIDData("duke", str(market))
    with pytest.raises(ValueError, match="target_root"):
        ReIDData("market1501", str(market), target="folder")
    with pytest.raises(ValueError, match="batch_size"):
        ReIDData("market1501", str(market), batch_size=10)
    with pytest.raises(ValueError, match="dataset_kwargs"):
        ReIDData("market1501", str(market), dataset_kwargs={"market1501": {}})
    with pytest.raises(ValueError, match="pad"):
        ReIDData("market1501", str(market), pad=-2)
    with pytest.raises(RuntimeError, match="setup"):
        ReIDData("market1501", str(market)).train_dataloader()
    with pytest.raises(ValueError, match=r"market1501: unknown options \['use_val'\]"):
        make(roots, dataset_kwargs={"source": {"use_val": True}})
    for pid in range(5):  # a target whose training identities are each seen by one camera only
        jpeg(tmp_path / "train" / f"{pid}_c1_0.jpg")
    for split in ("query", "gallery"):
        jpeg(tmp_path / split / "9_c1_0.jpg")
    with pytest.raises(ValueError, match="two cameras"):
        ReIDData("market1501", str(market), target="folder", target_root=str(tmp_path)).setup()


def test_cli_friendly():
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(ReIDData, "data")
    config = parser.parse_args(["--data.source=msmt17", "--data.source_root=x", '--data.dataset_kwargs={"source": {}}'])
    assert config.data.source == "msmt17" and config.data.target is None


def test_read_image_modes(tmp_path):
    gray16 = tmp_path / "gray16.png"
    Image.fromarray(np.full((6, 4), 65535, np.uint16)).save(gray16)
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (4, 6), (10, 20, 30, 0)).save(rgba)
    gray = tmp_path / "gray.jpg"
    Image.new("L", (4, 6), 128).save(gray)
    palette = tmp_path / "palette.gif"
    Image.new("P", (4, 6)).save(palette, transparency=0)
    for path in (gray16, rgba, gray, palette):
        image = read_image(path)
        assert image.mode == "RGB" and image.size == (4, 6)
    assert np.asarray(read_image(gray16)).min() == 255
    assert np.asarray(read_image(rgba))[0, 0].tolist() == [10, 20, 30]
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ValueError, match="corrupt.jpg"):
        ReIDImages([Sample(str(corrupt), 0, 0)], None)[0]
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        read_image(tmp_path / "missing.jpg")


def test_transforms_and_labels(tmp_path):
    jpeg(tmp_path / "a.jpg")
    samples = [Sample(str(tmp_path / "a.jpg"), 3, 1)] * 2
    train = ReIDImages(samples, train_transform(H, W), labels=[7, 8])
    item = train[1]
    assert item["image"].shape == (3, H, W) and item["pid"] == 8 and item["camid"] == 1 and item["index"] == 1
    test = ReIDImages(samples, reid_datasets.test_transform(H, W), num_query=1)
    assert test[0]["is_query"] and not test[1]["is_query"]
    assert torch.equal(test[0]["image"], test[1]["image"])  # no randomness at test time
    with pytest.raises(ValueError, match="labels"):
        ReIDImages(samples, None, labels=[1])


def _widest_border(transform, image: torch.Tensor, draws: int) -> int:
    """The widest run of black (padded) columns the random crop leaves, over `draws` draws on a white image."""
    widest = 0
    for _ in range(draws):
        black = transform(image)[0] < -1.5  # padding is black: (0 - mean) / std < -2 after normalisation
        widest = max(widest, int((black.float().mean(dim=0) > 0.5).sum()))
    return widest


def test_crop_padding_scales_with_the_image_height():
    """Pad 10 is the usual padding at 256 x 128; by default the pad is the same fraction of any height (2 at
    64 x 32), and an explicit pad is used as given."""
    torch.manual_seed(0)
    small = torch.full((3, 64, 32), 255, dtype=torch.uint8)
    assert _widest_border(train_transform(64, 32), small, 100) == 2  # reaches the pad, never more
    assert 2 < _widest_border(train_transform(64, 32, pad=10), small, 100) <= 10
    assert _widest_border(train_transform(64, 32, pad=0), small, 20) == 0
    assert 2 < _widest_border(train_transform(256, 128), torch.full((3, 256, 128), 255, dtype=torch.uint8), 30) <= 10
    with pytest.raises(ValueError, match="pad"):
        train_transform(64, 32, pad=-1)

"""Stage 0's camera-style renders in the pipeline: source renders join stage 1's training set, target renders are
drawn beside their real image in stage 2 (held-out identities' renders dropped), and stage 2's clustering features
can average each real image with its renders. Renders here are real training images with their colour channels
rolled by the target camera (a stand-in for a CycleGAN), named as `python -m reid.gan` names them."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from reid.data import ReIDData, read_dataset
from reid.data import datasets as reid_datasets
from reid.data.datasets import CamStyleImages, test_transform
from reid.data.synthetic import generate
from reid.engine import TargetFinetuner, stage2
from reid.gan import parse_style_name, style_name
from reid.models.core_reid import ensemble_fusion

H, W, CAMERAS = 64, 32, 3


pytestmark = pytest.mark.usefixtures("one_thread")


def render(path: str, camera_from: int, camera_to: int, folder: Path) -> Path:
    """A stand-in render of `path` in camera_to's style: its colour channels rolled by camera_to + 1."""
    pixels = np.roll(np.asarray(Image.open(path).convert("RGB")), camera_to + 1, axis=2)
    target = folder / style_name(path, camera_from, camera_to)
    Image.fromarray(pixels).save(target, quality=95)
    return target


def render_all(samples, folder: Path) -> Path:
    """Every sample rendered into every other camera's style, as stage 0 does."""
    folder.mkdir(parents=True, exist_ok=True)
    for s in samples:
        for camera in range(CAMERAS):
            if camera != s.camid:
                render(s.path, s.camid, camera, folder)
    return folder


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    """A synthetic source and target (3 cameras, 8 training identities each) and render folders of all of
    their training images (the target's held-out identities included, as stage 0 renders them)."""
    root = tmp_path_factory.mktemp("camstyle")
    generate(root, identities=16, cameras=CAMERAS, images_per_camera=2, seed=5)
    out = {"source": root / "source", "target": root / "target"}
    for domain in ("source", "target"):
        train = read_dataset("market1501", out[domain]).train
        out[f"{domain}_renders"] = render_all(train, root / f"{domain}_gan" / "bounding_box_train_camstyle")
    return out


def make(roots, **kwargs) -> ReIDData:
    args = dict(source="market1501", source_root=str(roots["source"]), height=H, width=W, batch_size=8)
    args.update(num_instances=4, num_workers=0, held_out_fraction=0.25, pad=2)
    data = ReIDData(**{**args, **kwargs})
    data.setup("fit")
    return data


def with_target(roots, **kwargs) -> ReIDData:
    return make(roots, target="market1501", target_root=str(roots["target"]), **kwargs)


def test_parse_style_name_inverts_style_name():
    for path, a, b in (("x/0002_c1s1_000451_03.jpg", 0, 5), ("12_c3_frame0045.png", 2, 0), ("a_fake_1to2", 1, 3)):
        assert parse_style_name(Path("out") / style_name(path, a, b)) == (Path(path).stem, a, b)
    for name in ("0002_c1s1_000451_03.jpg", "x_fake_0to1.jpg", "x_fake_2to2.jpg", "x_fake_1to.jpg", "_fake_1to2.jpg"):
        with pytest.raises(ValueError, match=re.escape(name)):
            parse_style_name(Path("renders") / name)


def test_source_renders_join_the_source_training_set_with_their_originals_pid_and_camid(roots):
    data = make(roots, source_camstyle=str(roots["source_renders"].parent))  # the stage-0 output folder works too
    train = data.source_splits.train
    assert len(data.source_renders) == (CAMERAS - 1) * len(train)
    by_stem = {Path(s.path).stem: s for s in train}
    for r in data.source_renders:
        stem, camera_from, camera_to = parse_style_name(r.path)
        original = by_stem[stem]
        assert Path(r.path).parent == roots["source_renders"] and camera_to != original.camid
        assert (r.pid, r.camid) == (original.pid, original.camid) == (original.pid, camera_from)
    assert data.source_train == train + data.source_renders
    assert data.source_splits.num_train_pids == len({s.pid for s in data.source_train})  # same classes
    loader = data.train_dataloader()
    assert loader.dataset.samples == data.source_train
    real = Counter(s.pid for s in train)
    # the P x K sampler sees the renders as more images of their identity: CAMERAS times as many per identity
    assert sorted(len(g) for g in loader.sampler.groups) == sorted(CAMERAS * n for n in real.values())
    drawn = list(loader.sampler)
    assert any(i >= len(train) for i in drawn) and any(i < len(train) for i in drawn)
    batch = next(iter(loader))
    assert set(Counter(batch["pid"].tolist()).values()) == {4}
    plain = make(roots)
    assert plain.source_renders == [] and plain.source_train == plain.source_splits.train


def test_target_renders_stay_beside_the_real_images_and_held_out_identities_are_dropped(roots):
    data = with_target(roots, target_camstyle=str(roots["target_renders"]))
    held_out = data.target_val_query + data.target_val_gallery
    assert held_out and data.target_train
    assert not any("_fake_" in s.path for s in data.target_train)  # clustering and labels stay on real images
    assert len(data.target_renders) == len(data.target_train)
    for s, renders in zip(data.target_train, data.target_renders, strict=True):
        expected = {style_name(s.path, s.camid, b) for b in range(CAMERAS) if b != s.camid}
        assert {Path(r).name for r in renders} == expected
    drawn_stems = {parse_style_name(r)[0] for renders in data.target_renders for r in renders}
    assert not drawn_stems & {Path(s.path).stem for s in held_out}
    assert data.camstyle_dropped == (CAMERAS - 1) * len(held_out)
    samples, owners = data.target_render_samples()
    assert [(s.pid, s.camid) for s in samples] == [
        (data.target_train[i].pid, data.target_train[i].camid) for i in owners
    ]
    assert [s.path for s in samples] == [r for renders in data.target_renders for r in renders]
    # stage 1: the target batch (BatchNorm statistics) is real images; the source is untouched
    loaders = data.train_dataloader()
    assert loaders["target"].dataset.samples == data.target_train and data.source_renders == []
    assert type(loaders["target"].dataset) is reid_datasets.ReIDImages


def test_render_folder_errors_name_the_file(roots, tmp_path):
    def folder(name: str, *files: tuple[str, str]) -> Path:
        out = tmp_path / name
        out.mkdir()
        for original, target_name in files:
            Image.open(original).save(out / target_name)
        return out

    train = read_dataset("market1501", roots["source"]).train
    first = train[0]
    good = style_name(first.path, first.camid, (first.camid + 1) % CAMERAS)
    bad = folder("bad", (first.path, good), (first.path, "0001_c1s1_000001_00.jpg"))
    with pytest.raises(ValueError, match=re.escape(str(bad / "0001_c1s1_000001_00.jpg"))):
        make(roots, source_camstyle=str(bad))
    query = read_dataset("market1501", roots["source"]).query[0]  # not a training image
    stray = folder("stray", (first.path, good), (query.path, style_name(query.path, query.camid, 0)))
    with pytest.raises(ValueError, match=re.escape(style_name(query.path, query.camid, 0)) + ".*not among"):
        make(roots, source_camstyle=str(stray))
    wrong = style_name(first.path, (first.camid + 1) % CAMERAS, first.camid)  # says another camera took it
    camera = folder("camera", (first.path, wrong))
    with pytest.raises(ValueError, match=re.escape(wrong) + ".*camera"):
        make(roots, source_camstyle=str(camera))
    with pytest.raises(ValueError, match="no images"):
        make(roots, source_camstyle=str(folder("empty")))
    with pytest.raises(ValueError, match="not a folder"):
        make(roots, source_camstyle=str(tmp_path / "missing"))
    # source renders are not target renders: none of their originals is a target image
    with pytest.raises(ValueError, match="not among"):
        with_target(roots, target_camstyle=str(roots["source_renders"]))
    with pytest.raises(ValueError, match="target_camstyle"):
        ReIDData("market1501", str(roots["source"]), target_camstyle=str(roots["target_renders"]))
    with pytest.raises(ValueError, match="camstyle_prob"):
        ReIDData("market1501", str(roots["source"]), camstyle_prob=1.5)


def draw(dataset, repeats: int, monkeypatch) -> list[tuple[int, dict, str]]:
    """(i, item, the file it read) for every index, `repeats` times."""
    read = []
    original = reid_datasets.read_image
    monkeypatch.setattr(reid_datasets, "read_image", lambda path: read.append(str(path)) or original(path))
    out = []
    for _ in range(repeats):
        for i in range(len(dataset)):
            out.append((i, dataset[i], read[-1]))
    return out


@pytest.mark.parametrize("prob", [0.5, 0.0, 1.0])
def test_pseudo_label_items_are_renders_camstyle_prob_of_the_time_with_the_original_index(roots, prob, monkeypatch):
    kwargs = {} if prob == 0.5 else {"camstyle_prob": prob}  # 0.5 is the default
    data = with_target(roots, target_camstyle=str(roots["target_renders"]), **kwargs)
    data.use_pseudo_labels()
    dataset = data.train_dataloader().dataset
    assert isinstance(dataset, CamStyleImages) and dataset.samples == data.target_train
    torch.manual_seed(0)
    drawn = draw(dataset, 12 if prob == 0.5 else 2, monkeypatch)
    renders, first = 0, 0
    for i, item, path in drawn:
        real = data.target_train[i]
        assert item["index"] == i and (item["pid"], item["camid"]) == (real.pid, real.camid)
        assert item["image"].shape == (3, H, W)
        if path != real.path:
            assert path in data.target_renders[i]
            renders += 1
            first += path == data.target_renders[i][0]
    share = renders / len(drawn)
    if prob == 0.5:
        assert len(drawn) >= 400 and abs(share - 0.5) < 0.08  # binomial sd 0.025 at 400 draws
        assert abs(first / renders - 0.5) < 0.1  # either of an image's two renders, uniformly
    else:
        assert share == prob


def test_pseudo_label_loader_without_renders_reads_real_images_only(roots):
    data = with_target(roots)
    data.use_pseudo_labels()
    assert type(data.train_dataloader().dataset) is reid_datasets.ReIDImages


def naive_features(model: TargetFinetuner, paths: list[str], flip: bool) -> tuple[torch.Tensor, ...]:
    """The three fused, normalised features of one image at a time, averaged over `paths` and normalised."""
    transform = test_transform(H, W)
    per_image = []
    for path in paths:
        image = transform(reid_datasets.read_image(path)).unsqueeze(0)
        fused = ensemble_fusion(model.teacher.forward_parts(image), model.student.forward_parts(image))
        if flip:
            mirror = image.flip(3)
            other = ensemble_fusion(model.teacher.forward_parts(mirror), model.student.forward_parts(mirror))
            fused = tuple(F.normalize(a + b, dim=1) for a, b in zip(fused, other, strict=True))
        per_image.append(fused)
    return tuple(F.normalize(torch.cat(level).mean(0), dim=0) for level in zip(*per_image, strict=True))


def tiny_model(**kwargs) -> TargetFinetuner:
    torch.manual_seed(0)
    model = TargetFinetuner(trunk="resnet_reid_tiny", input_size=(H, W), num_clusters=4, kmeans_iters=5, **kwargs)
    with torch.no_grad():  # a teacher that differs from the student, as after some EMA steps
        for p in model.teacher.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("flip", [False, True])
def test_camstyle_cluster_features_are_the_normalised_mean_over_an_image_and_its_renders(roots, flip):
    data = with_target(roots, target_camstyle=str(roots["target_renders"]))
    model = tiny_model().eval()
    plain = stage2.target_clustering_features(model.teacher, model.student, data, flip=flip)
    averaged = stage2.target_clustering_features(model.teacher, model.student, data, flip=flip, camstyle=True)
    assert [f.shape for f in averaged] == [f.shape for f in plain] and len(plain[0]) == len(data.target_train)
    with torch.no_grad():
        for i in (0, 7, len(data.target_train) - 1):
            paths = [data.target_train[i].path, *data.target_renders[i]]
            for level, expected in enumerate(naive_features(model, paths, flip)):
                torch.testing.assert_close(averaged[level][i], expected, atol=1e-5, rtol=1e-4)
            for level, expected in enumerate(naive_features(model, paths[:1], flip)):
                torch.testing.assert_close(plain[level][i], expected, atol=1e-5, rtol=1e-4)
    for a, p in zip(averaged, plain, strict=True):  # the renders do change the features
        assert (a - p).norm(dim=1).min() > 1e-3
        torch.testing.assert_close(a.norm(dim=1), torch.ones(len(a)))


def _fit(model: TargetFinetuner, data: ReIDData) -> L.Trainer:
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, limit_train_batches=1,
    )  # fmt: skip
    trainer.fit(model, data)
    return trainer


def test_stage2_clusters_on_render_averaged_features_and_trains_on_renders(roots, monkeypatch):
    data = with_target(roots, target_camstyle=str(roots["target_renders"]), camstyle_prob=1.0)
    averaged, read = [], []
    original_average, original_read = stage2.average_with_renders, reid_datasets.read_image
    monkeypatch.setattr(stage2, "average_with_renders", lambda *a: averaged.append(a) or original_average(*a))
    monkeypatch.setattr(reid_datasets, "read_image", lambda p: read.append(str(p)) or original_read(p))
    _fit(tiny_model(camstyle_cluster_features=True), data)
    assert len(averaged) == 3  # one clustering, three levels
    features, render_features, owners = averaged[0]
    samples, expected_owners = data.target_render_samples()
    assert len(features) == len(data.target_train) and len(render_features) == len(samples)
    assert owners.tolist() == expected_owners
    trained = read[-data.hparams.batch_size :]  # the training batch, camstyle_prob 1: renders only
    assert all("_fake_" in p for p in trained)


def test_camstyle_cluster_features_without_renders_is_an_error(roots):
    data = with_target(roots)
    with pytest.raises(ValueError, match="camstyle_cluster_features.*target_camstyle"):
        _fit(tiny_model(camstyle_cluster_features=True), data)
    model = tiny_model()
    with pytest.raises(ValueError, match="camstyle_cluster_features"):
        stage2.target_clustering_features(model.teacher, model.student, data, camstyle=True)


def test_cuhk03np_renders_from_stage0s_reader_join_stage1s_cuhk03np_source(roots, tmp_path):
    """The full-size CUHK03→Market stage 1 reads stage 0's renders of CUHK03-NP detected (configs/reid/
    cuhk03_to_market_source.yaml): stage 0's reader and stage 1's `cuhk03np` reader agree on the training images
    and cameras, so every render finds its original."""
    from reid.gan.data import read_train_samples

    images = read_dataset("market1501", roots["source"])
    for variant, offset in (("detected", 0), ("labeled", 1)):  # labeled/ beside it must not be picked up
        for split, samples in (
            ("bounding_box_train", images.train),
            ("query", images.query),
            ("bounding_box_test", images.gallery),
        ):
            folder = tmp_path / "cuhk03-np" / variant / split
            folder.mkdir(parents=True)
            for k, s in enumerate(samples[offset:]):
                Image.open(s.path).save(folder / f"{s.pid + 1:04d}_c{s.camid % 2 + 1}_{k:03d}.png")
    detected = tmp_path / "cuhk03-np" / "detected"
    stage0 = read_train_samples(detected)
    stage1 = read_dataset("cuhk03np", tmp_path / "cuhk03-np", variant="detected").train
    assert [(p, c) for p, _, c in stage0] == [(s.path, s.camid) for s in stage1]
    renders = tmp_path / "renders"
    renders.mkdir()
    for path, _, camid in stage0:
        render(path, camid, 1 - camid, renders)
    data = make(
        {"source": tmp_path / "cuhk03-np"},
        source="cuhk03np",
        source_camstyle=str(renders),
        dataset_kwargs={"source": {"variant": "detected"}},
    )
    assert len(data.source_renders) == len(stage1) and data.source_train == stage1 + data.source_renders
    assert {Path(r.path).name for r in data.source_renders} == {p.name for p in renders.iterdir()}

"""Stage 2 with `num_clusters: null`: K is estimated before every epoch, the classifier takes that size, the
optimiser trains the new layer (not the one it replaced), and identity and camera purity are logged beside the
camera chance level and the true identities' own camera purity; with `cross_camera_neighbors` the k-reciprocal
expansion gets the images' cameras."""

import lightning as L
import pytest
import torch

from reid import clustering
from reid.data import ReIDData
from reid.data.synthetic import generate
from reid.engine import TargetFinetuner


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("stage2")
    generate(root, identities=24, cameras=2, images_per_camera=3, seed=4)
    data = ReIDData(
        "market1501", str(root / "source"), "market1501", str(root / "target"), height=64, width=32,
        batch_size=16, num_instances=4, num_workers=0, held_out_fraction=0.0, pad=2,
    )  # fmt: skip
    model = TargetFinetuner(
        trunk="resnet_reid_tiny", input_size=(64, 32), num_clusters=None, kmeans_iters=10, camera_normalize=True,
        neighbor_expansion=2, cross_camera_neighbors=True,
    )  # fmt: skip
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, limit_train_batches=2,
    )  # fmt: skip
    seen, expanded = [], []

    def spy(features, k, cams=None):  # the clustering's k-reciprocal expansion, recording what it was given
        expanded.append((k, cams))
        return expand(features, k, cams=cams)

    expand = clustering.reciprocal_expansion
    model.on_train_epoch_end = lambda: seen.append(dict(trainer.callback_metrics))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clustering, "reciprocal_expansion", spy)
        trainer.fit(model, data)
    return model, trainer, seen, expanded


def test_k_is_estimated_each_epoch_and_the_classifier_follows(fitted):
    model, trainer, seen, _ = fitted
    assert len(seen) == 2
    k = int(seen[-1]["train/num_clusters"])
    assert 2 <= k < 36  # 12 training identities x 2 cameras x 3 images = 36 images
    assert model.student.classifier.out_features == model.teacher.classifier.out_features == k
    params = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert id(model.student.classifier.weight) in params
    assert sum(p.numel() for g in trainer.optimizers[0].param_groups for p in g["params"]) == sum(
        p.numel() for p in model.student.parameters()
    )  # every student parameter once, no stale classifier


def test_purities_are_logged(fitted):
    _, _, seen, _ = fitted
    for metrics in seen:
        assert 0 < float(metrics["train/purity"]) <= 1
        assert 0.5 <= float(metrics["train/camera_purity"]) <= 1  # two cameras: a cluster's top camera >= half
        assert float(metrics["train/camera_chance"]) == pytest.approx(0.5)  # equal images per camera
        assert float(metrics["train/camera_purity_identities"]) == pytest.approx(0.5)  # 3 + 3 images per identity
        assert 0 <= float(metrics["train/dbscan_noise"]) < 1


def test_cross_camera_neighbors_hands_the_cameras_to_the_expansion(fitted):
    model, trainer, _, expanded = fitted
    cams = [s.camid for s in trainer.datamodule.target_train]
    assert len(expanded) == 2 * 3  # two epochs, three levels
    for k, given in expanded:
        assert k == 2 and given is not None and given.tolist() == cams


def test_cross_camera_neighbors_needs_an_expansion():
    with pytest.raises(ValueError, match="neighbor_expansion"):
        TargetFinetuner(trunk="resnet_reid_tiny", input_size=(64, 32), cross_camera_neighbors=True)
    with pytest.raises(ValueError, match="neighbor_expansion"):
        TargetFinetuner(trunk="resnet_reid_tiny", input_size=(64, 32), neighbor_expansion=-1)


def test_on_load_checkpoint_resizes_the_classifier(fitted):
    model, _, _, _ = fitted
    fresh = TargetFinetuner(trunk="resnet_reid_tiny", input_size=(64, 32), num_clusters=None)
    state = {f"{k}": v for k, v in model.state_dict().items()}
    fresh.on_load_checkpoint({"state_dict": state})
    fresh.load_state_dict(state)
    assert torch.equal(fresh.teacher.classifier.weight, model.teacher.classifier.weight)


def test_true_labels_replace_the_clusters_at_every_level(tmp_path):
    """The upper-bound option: pseudo-labels are the target's identities (renumbered), purity is 1, and the
    classifier starts from each identity's mean feature."""
    generate(tmp_path, identities=16, cameras=2, images_per_camera=2, seed=5)
    data = ReIDData(
        "market1501", str(tmp_path / "source"), "market1501", str(tmp_path / "target"), height=64, width=32,
        batch_size=8, num_instances=4, num_workers=0, held_out_fraction=0.0, pad=2,
    )  # fmt: skip
    model = TargetFinetuner(trunk="resnet_reid_tiny", input_size=(64, 32), num_clusters=3, true_labels=True)
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, limit_train_batches=1,
    )  # fmt: skip
    seen = []
    model.on_train_epoch_end = lambda: seen.append(dict(trainer.callback_metrics))
    trainer.fit(model, data)
    pids = torch.tensor([s.pid for s in data.target_train])
    renumbered = torch.searchsorted(pids.unique(), pids)
    assert all(torch.equal(level.cpu(), renumbered) for level in model.pseudo_labels)
    assert float(seen[0]["train/purity"]) == 1.0
    assert model.student.classifier.out_features == len(pids.unique()) == 8  # 8 training identities, not K = 3

"""Stage 0 camera-style CycleGAN: networks, losses, pool, optimiser wiring, a tiny learning check, rendering, CLI."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from reid.gan import (
    CameraPairData,
    CameraStyleGAN,
    ImagePool,
    PatchDiscriminator,
    ResnetGenerator,
    cyclegan_lr_factor,
    load_generator,
    load_image,
    lsgan_loss,
    main,
    parse_style_name,
    read_train_samples,
    save_generator,
    style_name,
    write_style_augmented,
)

TINY = {"ngf": 8, "ndf": 8, "n_blocks": 2, "n_layers_d": 2}
CASTS = {0: np.array([0.25, 0.0, -0.25]), 1: np.array([-0.25, 0.0, 0.25]), 2: np.array([0.0, 0.2, 0.0])}


pytestmark = pytest.mark.usefixtures("one_thread")


def make_cameras(folder, per_camera=16, height=32, width=16, cameras=(0, 1), seed=0):
    """Market-style files `PPPP_cCs1_000000_00.jpg`: random 'people' (a few coloured blocks on a textured
    background), each camera adding its own colour cast. Returns the folder of the images."""
    rng = np.random.default_rng(seed)
    folder = folder / "bounding_box_train"
    folder.mkdir(parents=True)
    for cam in cameras:
        for i in range(per_camera):
            image = 0.5 + 0.1 * rng.standard_normal((height, width, 3))
            for _ in range(3):
                top, left = rng.integers(0, height - 8), rng.integers(0, width - 6)
                image[top : top + rng.integers(4, 12), left : left + rng.integers(3, 8)] = rng.uniform(0.25, 0.75, 3)
            image = np.clip(image + CASTS[cam], 0, 1)
            Image.fromarray((image * 255).astype(np.uint8)).save(folder / f"{i % 5:04d}_c{cam + 1}s1_{i:06d}_00.jpg")
    return folder


# -- networks --------------------------------------------------------------------------------------------------


def test_generator_shapes_and_range():
    gen = ResnetGenerator(ngf=8, n_blocks=2)
    out = gen(torch.rand(2, 3, 64, 32) * 2 - 1)
    assert out.shape == (2, 3, 64, 32) and out.abs().max() <= 1
    assert sum(isinstance(m, torch.nn.ReflectionPad2d) for m in gen.modules()) == 2 + 2 * 2
    assert len(ResnetGenerator().model) == 4 + 2 * 3 + 9 + 2 * 3 + 3  # stem, 2 down, 9 blocks, 2 up, head
    with pytest.raises(ValueError, match="multiples of 4"):
        gen(torch.zeros(1, 3, 30, 16))


def test_discriminator_shape_and_70px_receptive_field():
    disc = PatchDiscriminator()
    assert disc.receptive_field == 70
    assert disc(torch.zeros(1, 3, 256, 128)).shape == (1, 1, 30, 14)
    # Measured: the input pixels that influence one output score (no norm, which would couple all positions).
    disc = PatchDiscriminator(ndf=4, norm="none")
    x = torch.zeros(1, 3, 140, 140, requires_grad=True)
    out = disc(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows, cols = torch.nonzero(x.grad[0].abs().sum(0), as_tuple=True)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (70, 70)
    assert PatchDiscriminator(n_layers=2).receptive_field == 34


# -- losses ----------------------------------------------------------------------------------------------------


def test_losses_match_hand_formulas():
    torch.manual_seed(0)
    pred = torch.randn(2, 1, 5, 3)
    assert torch.allclose(lsgan_loss(pred, real=True), ((pred - 1) ** 2).mean())
    assert torch.allclose(lsgan_loss(pred, real=False), (pred**2).mean())

    gan = CameraStyleGAN(**TINY, lambda_cycle=10.0, lambda_identity=0.5)
    a, b = torch.rand(2, 3, 32, 16) * 2 - 1, torch.rand(2, 3, 32, 16) * 2 - 1
    torch.manual_seed(1)
    out = gan.generator_losses(a, b)
    fake_b, fake_a = gan.gen_ab(a), gan.gen_ba(b)
    gan_terms = ((gan.disc_b(fake_b) - 1) ** 2).mean() + ((gan.disc_a(fake_a) - 1) ** 2).mean()
    cycle = (gan.gen_ba(fake_b) - a).abs().mean() + (gan.gen_ab(fake_a) - b).abs().mean()
    identity = (gan.gen_ba(a) - a).abs().mean() + (gan.gen_ab(b) - b).abs().mean()
    assert torch.allclose(out["loss"], gan_terms + 10.0 * cycle + 0.5 * 10.0 * identity, rtol=1e-5)
    assert torch.allclose(out["cycle_a"] + out["cycle_b"], cycle) and torch.allclose(out["fake_b"], fake_b)

    no_identity = CameraStyleGAN(**TINY, lambda_identity=0.0)
    assert "identity_a" not in no_identity.generator_losses(a, b)

    d = gan.discriminator_loss(gan.disc_b, b, fake_b)
    expected = 0.5 * (((gan.disc_b(b) - 1) ** 2).mean() + (gan.disc_b(fake_b) ** 2).mean())
    assert torch.allclose(d, expected)


def test_lr_schedule_is_cyclegans_linear_decay():
    factors = [cyclegan_lr_factor(e, 3, 4) for e in range(7)]
    assert factors[:3] == [1.0, 1.0, 1.0]
    assert np.allclose(factors[3:], [0.8, 0.6, 0.4, 0.2])


# -- image pool ------------------------------------------------------------------------------------------------


def test_image_pool_semantics():
    images = [torch.full((1, 3, 2, 2), float(i)) for i in range(200)]
    assert ImagePool(0).query(images[0]) is images[0]

    pool = ImagePool(size=3, seed=0)
    for i in range(3):  # filling up: every image comes straight back and is kept
        assert torch.equal(pool.query(images[i]), images[i])
    assert [int(x[0, 0, 0]) for x in pool.images] == [0, 1, 2]

    swapped = 0
    for i in range(3, 200):
        before = {int(x[0, 0, 0]) for x in pool.images}
        value = int(pool.query(images[i])[0, 0, 0, 0])
        after = {int(x[0, 0, 0]) for x in pool.images}
        if value == i:  # returned as is: pool unchanged
            assert after == before
        else:  # an old image handed out, the new one stored in its place
            swapped += 1
            assert value in before and after == before - {value} | {i}
        assert len(pool.images) == 3
    assert 70 < swapped < 130  # probability 1/2

    batch = torch.randn(4, 3, 2, 2, requires_grad=True)
    assert not ImagePool(10).query(batch).requires_grad


# -- optimiser wiring ------------------------------------------------------------------------------------------


def _trainer(tmp_path, **kw):
    options = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    return L.Trainer(**{**options, **kw})


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)` has been overridden")
def test_each_optimiser_step_sees_gradients_of_its_own_networks_only(tmp_path):
    torch.manual_seed(0)
    make_cameras(tmp_path, per_camera=2)
    gan = CameraStyleGAN(**TINY)
    generators = {id(p) for m in (gan.gen_ab, gan.gen_ba) for p in m.parameters()}
    discriminators = {id(p) for m in (gan.disc_a, gan.disc_b) for p in m.parameters()}
    seen = {}

    class Spy(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            for name, lightning_opt in zip(("g", "d"), module.optimizers(), strict=True):
                opt = lightning_opt.optimizer
                params = {id(p) for group in opt.param_groups for p in group["params"]}
                seen[f"{name}_params"] = params

                def spy(*args, name=name, opt=opt, step=opt.step, **kwargs):
                    with_grad = {id(p) for p in module.parameters() if p.grad is not None and p.grad.abs().sum() > 0}
                    seen[name] = with_grad
                    return step(*args, **kwargs)

                opt.step = spy

    data = CameraPairData(str(tmp_path), camera_a=0, camera_b=1, height=32, width=16, batch_size=2, num_workers=0)
    _trainer(tmp_path, max_steps=2, limit_val_batches=0, callbacks=[Spy()]).fit(gan, data)
    assert seen["g_params"] == generators and seen["d_params"] == discriminators
    assert seen["g"] == generators  # every generator weight has a gradient, no discriminator weight does
    assert seen["d"] == discriminators


# -- learning check, PNG grid, generators on disk, rendering ---------------------------------------------------


def channel_means(images: torch.Tensor) -> torch.Tensor:
    return (images * 0.5 + 0.5).mean(dim=(0, 2, 3))


def test_tiny_cyclegan_learns_the_colour_cast_and_renders_the_augmented_set(tmp_path):
    L.seed_everything(0, verbose=False)
    folder = make_cameras(tmp_path / "data", per_camera=16)
    samples = read_train_samples(tmp_path / "data")
    assert len(samples) == 32 and {c for _, _, c in samples} == {0, 1} and samples[0][1] == 0
    a = torch.stack([load_image(p, 32, 16) for p, _, c in samples if c == 0])
    b = torch.stack([load_image(p, 32, 16) for p, _, c in samples if c == 1])

    data = CameraPairData(str(tmp_path / "data"), camera_a=0, camera_b=1, height=32, width=16, batch_size=4,
                          num_workers=0)  # fmt: skip
    gan = CameraStyleGAN(**TINY, constant_epochs=8, decay_epochs=4, pool_size=8)  # paper's lr 2e-4, β1 0.5
    with torch.no_grad():
        untrained = gan.gen_ab(a)
    lrs = []

    class LearningRates(L.Callback):
        def on_train_epoch_start(self, trainer, module):
            lrs.append([opt.param_groups[0]["lr"] for opt in module.optimizers()])

    trainer = _trainer(tmp_path / "run", max_epochs=12, check_val_every_n_epoch=12, callbacks=[LearningRates()])
    trainer.fit(gan, data)  # 4 batches of 4 an epoch: 48 generator and 48 discriminator steps
    with torch.no_grad():
        fake_b = gan.gen_ab.eval()(a)

    def distance(images):
        return (channel_means(images) - channel_means(b)).norm().item()

    before, grey, after = distance(a), distance(untrained), distance(fake_b)
    print(f"A→B channel-mean distance to camera B: input {before:.3f}, untrained {grey:.3f}, trained {after:.3f}")
    assert after < 0.15 * before and after < 0.3 * grey
    assert lrs == [[2e-4 * cyclegan_lr_factor(e, 8, 4)] * 2 for e in range(12)] and lrs[-1][0] > 0

    grids = list((tmp_path / "run" / "samples").glob("c0_c1_epoch*.png"))
    assert len(grids) == 2 and Image.open(grids[0]).size == (4 * 17 + 1, 6 * 33 + 1)

    save_generator(gan.gen_ab, tmp_path / "g" / "0to1.safetensors")
    loaded = load_generator(tmp_path / "g" / "0to1.safetensors")
    assert torch.allclose(loaded(a[:2]), fake_b[:2], atol=1e-6)

    new = write_style_augmented(gan.generators(), samples, tmp_path / "styled", 32, 16, "cpu", batch_size=5)
    assert len(new) == 32
    names = sorted(p.name for p in (tmp_path / "styled").iterdir())
    assert names == sorted(style_name(p, c, 1 - c) for p, _, c in samples)
    assert "0000_c1s1_000000_00_fake_1to2.jpg" in names and not [n for n in names if n.startswith(".")]
    for (path, pid, camid), (_, src_pid, src_camid) in zip(sorted(new), sorted(samples), strict=True):
        assert (pid, camid) == (src_pid, src_camid)  # identity and original camera kept
        assert Image.open(path).size == (16, 32)
    assert str(folder) in samples[0][0]


def test_cli_runs_stage0_over_all_camera_pairs(tmp_path, capsys):
    make_cameras(tmp_path / "data", per_camera=3, cameras=(0, 1, 2))
    argv = ["--root", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--size", "32x16", "--epochs", "1",
            "--ngf", "4", "--ndf", "4", "--n-blocks", "1", "--n-layers-d", "2", "--num-workers", "0",
            "--accelerator", "cpu", "--devices", "1"]  # fmt: skip
    new = main(argv)
    assert len(new) == 9 * 2  # every image into each of the two other cameras' styles
    assert {parse_style_name(path)[1:] for path, _, _ in new} == {(a, b) for a in range(3) for b in range(3) if a != b}
    generators = sorted(p.name for p in (tmp_path / "out" / "generators").glob("*.safetensors"))
    assert generators == sorted(f"{a}to{b}.safetensors" for a in range(3) for b in range(3) if a != b)
    lines = (tmp_path / "out" / "camstyle_train.txt").read_text().splitlines()
    assert len(lines) == 18 and all(Image.open(line.split()[0]).size == (16, 32) for line in lines)
    # A second run finds everything done and trains nothing.
    stamp = (tmp_path / "out" / "generators" / "0to1.safetensors").stat().st_mtime_ns
    assert len(main(argv)) == 18
    assert (tmp_path / "out" / "generators" / "0to1.safetensors").stat().st_mtime_ns == stamp


def test_cli_seed_repeats_a_run_and_another_seed_changes_it(tmp_path):
    from safetensors.torch import load_file

    make_cameras(tmp_path / "data", per_camera=3, cameras=(0, 1))

    def weights(out: str, seed: str) -> dict:
        main(["--root", str(tmp_path / "data"), "--out", str(tmp_path / out), "--size", "32x16", "--epochs", "1",
              "--ngf", "4", "--ndf", "4", "--n-blocks", "1", "--n-layers-d", "2", "--num-workers", "0",
              "--accelerator", "cpu", "--devices", "1", "--seed", seed])  # fmt: skip
        return load_file(tmp_path / out / "generators" / "0to1.safetensors")

    first, again, other = weights("a", "3"), weights("b", "3"), weights("c", "4")
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_cli_max_images_per_camera_limits_training_not_rendering(tmp_path, monkeypatch):
    from reid.gan import stage0

    make_cameras(tmp_path / "data", per_camera=5, cameras=(0, 1))
    trained = []

    class Recorded(CameraPairData):
        def setup(self, stage=None):
            super().setup(stage)
            trained.append((len(self.paths_a), len(self.paths_b)))

    monkeypatch.setattr(stage0, "CameraPairData", Recorded)
    new = main(["--root", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--size", "32x16", "--epochs", "1",
                "--ngf", "4", "--ndf", "4", "--n-blocks", "1", "--n-layers-d", "2", "--num-workers", "0",
                "--accelerator", "cpu", "--devices", "1", "--max-images-per-camera", "2"])  # fmt: skip
    assert trained == [(2, 2)] and len(new) == 10  # trained on 2 per camera, all 5 + 5 rendered


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--size", "30x16"], "--size"),
        (["--cameras", "0,9"], "--cameras"),
        (["--epochs", "0"], "--epochs"),
        (["--max-images-per-camera", "0"], "--max-images-per-camera"),
        (["--dataset", "msmt17"], "dataset"),
        (["--root", "/nonexistent"], "root"),
    ],
)
def test_cli_errors_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, extra, message):
    make_cameras(tmp_path / "data", per_camera=1, cameras=(0, 1))
    with pytest.raises(SystemExit) as exit_info:
        main(["--root", str(tmp_path / "data"), "--out", str(tmp_path / "out"), *extra])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_pair_data_batches_and_errors(tmp_path):
    make_cameras(tmp_path, per_camera=3, cameras=(0, 1, 2))
    samples = [(p, c) for p, _, c in read_train_samples(tmp_path)]  # plain (path, camid) works too
    data = CameraPairData(camera_a=2, camera_b=0, height=32, width=16, batch_size=2, num_workers=0, samples=samples)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert batch["a"].shape == batch["b"].shape == (2, 3, 32, 16) and batch["a"].min() >= -1
    a_mean = channel_means(batch["a"])
    assert a_mean[1] > a_mean[0]  # camera 2's green cast
    with pytest.raises(ValueError, match="camera 5"):
        CameraPairData(camera_a=0, camera_b=5, samples=samples).setup("fit")
    with pytest.raises(ValueError, match="camera_b"):
        CameraPairData(camera_a=1, camera_b=1)
    assert F.l1_loss(load_image(samples[0][0], 32, 16), load_image(samples[0][0], 32, 16)) == 0


def test_pair_data_trains_on_at_most_max_images_per_camera(tmp_path):
    make_cameras(tmp_path, per_camera=7, cameras=(0, 1))
    samples = read_train_samples(tmp_path)
    cam0 = [p for p, _, c in samples if c == 0]
    cam1 = [p for p, _, c in samples if c == 1]
    for count, expected in ((3, [0, 3, 6]), (4, [0, 2, 4, 6]), (1, [0]), (7, list(range(7))), (50, list(range(7)))):
        data = CameraPairData(camera_a=1, camera_b=0, num_workers=0, samples=samples, max_images_per_camera=count)
        data.setup("fit")
        assert data.paths_a == [cam1[i] for i in expected] and data.paths_b == [cam0[i] for i in expected]
    whole = CameraPairData(camera_a=1, camera_b=0, samples=samples)
    whole.setup("fit")
    assert whole.paths_a == cam1 and whole.paths_b == cam0
    with pytest.raises(ValueError, match="max_images_per_camera"):
        CameraPairData(samples=samples, max_images_per_camera=0)

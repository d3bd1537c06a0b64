"""SIC/AIC against PAIR's reference implementation (``saliency.metrics.pic``), and MS-SSIM sanity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from igcli.engine import Engine
from igcli.metrics import pic

SIZE = 176  # MS-SSIM's five scales need more than 160 pixels


class Quadrant(nn.Module):
    """Logits: class 0 = 6 x (mean of the top-left quadrant - 0.45), class 1 = 0 (inputs are pixels in [0, 1])."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        region = x[:, :, : SIZE // 2, : SIZE // 2].mean(dim=(1, 2, 3))
        return torch.stack([6 * (region - 0.45), torch.zeros_like(region)], dim=1)


def engine(model, batch_size: int) -> Engine:
    return Engine(model, output="prob", batch_size=batch_size, device=torch.device("cpu"))


def picture(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)
    pixels[: SIZE // 2, : SIZE // 2] = rng.integers(180, 256, (SIZE // 2, SIZE // 2, 3))  # a bright, busy corner
    return pixels


def to_input(stack: torch.Tensor) -> torch.Tensor:
    return stack.float() / 255


@pytest.mark.parametrize("seed", [0, 1])
def test_sic_and_aic_equal_pairs_compute_pic_metric(seed, monkeypatch):
    reference = pytest.importorskip("saliency.metrics.pic")
    pixels = picture(seed)
    scores = np.random.default_rng(seed + 10).random((SIZE, SIZE))
    scores[: SIZE // 2, : SIZE // 2] += 0.5  # a decent map
    model = Quadrant()
    samples = pic.measure(engine(model, 8), pixels, scores, 0, to_input, seed=seed)
    ours = pic.image_curves(samples)

    base = pic.blurred_base(pixels)
    # Our bokeh construction (PIL blur, Yang et al. 2023 §4.4) in place of PAIR's interpolation blur; the rest is PAIR's.
    monkeypatch.setattr(reference, "create_blurred_image",
                        lambda full_img, pixel_mask, method="linear": np.where(pixel_mask[..., None], full_img, base))

    def probability(batch):
        with torch.no_grad():
            return torch.softmax(model(to_input(torch.from_numpy(batch).permute(0, 3, 1, 2))), 1)[:, 0].numpy()

    def accuracy(batch):
        with torch.no_grad():
            return (model(to_input(torch.from_numpy(batch).permute(0, 3, 1, 2))).argmax(1) == 0).float().numpy()

    # PAIR 0.2.1 calls np.trapz, which NumPy 2.4 removed: give its module a numpy with it.
    import types

    shim = types.SimpleNamespace(**{n: getattr(np, n) for n in dir(np) if not n.startswith("__") and n != "trapz"})
    shim.trapz = np.trapezoid
    monkeypatch.setattr(reference, "np", shim)
    mask = pic.random_mask(SIZE, SIZE, seed)
    for name, function in (("sic", probability), ("aic", accuracy)):
        try:
            expected = reference.compute_pic_metric(pixels, scores, mask, function, list(pic.PIC_FRACTIONS),
                                                    min_pred_value=0.0, num_data_points=pic.CURVE_POINTS)
        except reference.ComputePicMetricError:
            assert isinstance(ours[name], str)  # both refuse the image
            continue
        np.testing.assert_allclose(ours[name], expected.curve_y, atol=1e-9)
        assert np.trapezoid(ours[name], pic.curve_grid()) == pytest.approx(expected.auc, abs=1e-8)
    assert isinstance(ours["sic"], np.ndarray)  # this construction is scorable for SIC


def test_information_levels_and_aggregation():
    pixels = picture(3)
    assert pic.webp_size(pic.blurred_base(pixels)) < pic.webp_size(pixels)  # blur removes information
    from pytorch_msssim import ms_ssim

    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()
    noisy = (x + torch.randn(x.shape, generator=torch.Generator().manual_seed(0)) * 40).clamp(0, 255)
    assert float(ms_ssim(x, x, data_range=255)) == pytest.approx(1.0)
    assert float(ms_ssim(x, noisy, data_range=255)) < 0.9
    curves = [np.linspace(0, 1, pic.CURVE_POINTS + 1) ** k for k in (1, 2, 3)]
    median, area = pic.aggregate(curves, "sic")
    np.testing.assert_allclose(median, curves[1])
    assert area == pytest.approx(1 / 3, abs=1e-3)
    mean, _ = pic.aggregate(curves, "aic-msssim")
    np.testing.assert_allclose(mean, np.mean(curves, axis=0))
    with pytest.raises(pic.Unscorable, match="not less informative"):
        pic.curve(np.array([1.0]), np.array([0.5]), 2.0, 2.0, 0.0, 1.0)


def test_measuring_images_together_equals_one_at_a_time(monkeypatch):
    import zlib

    # Batching must build and score the same images; a cheap lossless size (zlib) stands in for the WebP
    # encodes (0.3 s each here), which act on one image at a time either way.
    monkeypatch.setattr(pic, "webp_size", lambda pixels: len(zlib.compress(pixels.tobytes(), 1)))
    pictures = [picture(4), picture(5)]
    scores = [np.random.default_rng(k).random((SIZE, SIZE)) for k in (4, 5)]
    together = pic.measure_batch(engine(Quadrant(), 7), pictures, scores, [0, 1], to_input, [4, 5])
    for k in range(2):
        alone = pic.measure(engine(Quadrant(), 3), pictures[k], scores[k], k, to_input, seed=4 + k)
        for field in ("entropy", "msssim", "probability", "correct"):
            np.testing.assert_allclose(getattr(together[k], field), getattr(alone, field), rtol=1e-6)


def test_only_the_information_levels_asked_for_are_measured(monkeypatch):
    encoded = []
    monkeypatch.setattr(pic, "webp_size", lambda pixels: encoded.append(1) or 1)
    args = (engine(Quadrant(), 8), [picture(6)], [np.random.default_rng(6).random((SIZE, SIZE))], [0], to_input, [6])
    (both,) = pic.measure_batch(*args)
    assert len(encoded) == len(pic.PIC_FRACTIONS) + 2
    (msssim_only,) = pic.measure_batch(*args, levels=("msssim",))
    assert len(encoded) == len(pic.PIC_FRACTIONS) + 2  # no WebP encode for MS-SSIM metrics
    assert np.isnan(msssim_only.entropy).all()
    np.testing.assert_array_equal(msssim_only.msssim, both.msssim)
    assert set(pic.image_curves(msssim_only, ("msssim",))) == {"sic-msssim", "aic-msssim"}
    (entropy_only,) = pic.measure_batch(*args, levels=("entropy",))
    assert np.isnan(entropy_only.msssim).all() and not np.isnan(entropy_only.entropy).any()
    assert [pic.level_of(name) for name in ("sic", "aic", "sic-msssim", "aic-msssim")] == [
        "entropy", "entropy", "msssim", "msssim"]


class Counted(nn.Module):
    """Quadrant, recording the row count of every call; NaN logits for pictures whose first pixel is (7, 7, 7)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(x.shape[0])
        logits = Quadrant()(x)
        marked = (x[:, :, 0, 0] == 7 / 255).all(dim=1).view(-1, 1)
        return torch.where(marked, torch.full_like(logits, float("nan")), logits)


def test_pic_forward_passes_go_through_the_engine_in_its_chunks(monkeypatch):
    monkeypatch.setattr(pic, "webp_size", lambda pixels: 1)
    pictures = [picture(7), picture(8)]
    scores = [np.random.default_rng(k).random((SIZE, SIZE)) for k in (7, 8)]
    model = Counted()
    samples = pic.measure_batch(engine(model, 10), pictures, scores, [0, 1], to_input, [7, 8], levels=("entropy",))
    rows = 2 * (len(pic.PIC_FRACTIONS) + 2)  # 54 images: 5 calls of 10 and one of 4
    assert model.calls == [10] * 5 + [4]
    for k, pixels in enumerate(pictures):  # the last image of each picture is the original: the old formula
        logits = Quadrant()(to_input(torch.from_numpy(pixels).permute(2, 0, 1)[None]))
        assert samples[k].probability[-1] == pytest.approx(float(torch.softmax(logits, 1)[0, k]), rel=1e-6)
        assert bool(samples[k].correct[-1]) == (int(logits.argmax(1)) == k)
    assert sum(model.calls) == rows


def test_pic_marks_a_picture_with_non_finite_model_outputs(monkeypatch):
    monkeypatch.setattr(pic, "webp_size", lambda pixels: 1)
    pictures = [picture(9), picture(10)]
    pictures[1][0, 0] = 7  # marked: NaN logits for its original and its bokeh images that keep this pixel
    scores = [np.random.default_rng(k).random((SIZE, SIZE)) for k in (9, 10)]
    first, second = pic.measure_batch(engine(Counted(), 16), pictures, scores, [0, 0], to_input, [9, 10],
                                      levels=("entropy",))
    assert np.isfinite(first.probability).all()
    assert np.isnan(second.probability[-1]) and np.isfinite(second.probability[0])  # the blurred corner is not 7
    (alone,) = pic.measure_batch(engine(Quadrant(), 16), pictures[:1], scores[:1], [0], to_input, [9],
                                 levels=("entropy",))
    np.testing.assert_allclose(first.probability, alone.probability, rtol=1e-6)  # its batch-mate changes nothing


def test_min_pred_leaves_an_image_whose_original_scores_low_unscored_as_pair_does():
    # PAIR's compute_pic_metric(min_pred_value=...): the original image's score (SIC: probability; AIC: 1 if
    # predicted, else 0) below it means the image is skipped; igcli counts it unscorable with the reason.
    levels = np.array([1.0, 2.0, 3.0, 4.0])
    samples = pic.PicSamples(entropy=levels, msssim=levels / 4, probability=np.array([0.1, 0.3, 0.5, 0.6]),
                             correct=np.array([False, False, True, True]))
    scored = pic.image_curves(samples, ("entropy",))
    assert all(isinstance(curve, np.ndarray) for curve in scored.values())
    assert pic.image_curves(samples, ("entropy",), min_pred=0.6)["sic"].shape == scored["sic"].shape  # 0.6 >= 0.6
    strict = pic.image_curves(samples, ("entropy",), min_pred=0.8)
    assert strict["sic"] == "the model scores the original 0.6, below --min-pred 0.8"
    assert isinstance(strict["aic"], np.ndarray)  # predicted: AIC's original scores 1
    missed = pic.PicSamples(entropy=levels, msssim=levels / 4, probability=samples.probability,
                            correct=np.array([False, False, False, False]))
    assert pic.image_curves(missed, ("entropy",), min_pred=0.8)["aic"].startswith("the model scores the original 0,")

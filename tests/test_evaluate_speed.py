"""``igcli evaluate`` at speed (issue 14): streamed perturbations, pooled WebP encodes, batched recomputation.

Each faster path is compared with the slower one it replaced, on the same inputs: the values must not move.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import CountingModel, tiny_convnet
from igcli.api import attribute
from igcli.engine import Engine
from igcli.jobs.evaluate_batch import _Recompute
from igcli.metrics import perturbation, pic, stability, webp
from igcli.metrics.ranking import top_masks
from igcli.baselines import Normalization

SIZE = 16


def engine(model, batch_size: int) -> Engine:
    return Engine(model, output="prob", batch_size=batch_size, device=torch.device("cpu"))


@pytest.fixture
def case():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand((3, 3, SIZE, SIZE), generator=generator) * 2 - 1
    scores = torch.rand((3, SIZE, SIZE), generator=generator, dtype=torch.float64)
    scores[1, :4] = 0.5  # ties: broken by pixel index, in both constructions
    return images, torch.full_like(images, -1.5), scores, torch.tensor([0, 3, 1])


# -- insertion, deletion, ABPC: built per engine chunk -----------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 5, 7, 64])
@pytest.mark.parametrize("reveal", [True, False])
def test_streamed_curves_equal_the_all_at_once_curves(case, batch_size, reveal):
    images, black, scores, targets = case
    model = tiny_convnet(seed=1)
    fractions = perturbation.INSERTION_FRACTIONS
    old = perturbation.curves(engine(model, batch_size), images, black, top_masks(scores, fractions), targets,
                              reveal=reveal)
    positions = perturbation.pixel_positions(scores)
    counts = perturbation.level_counts(fractions, SIZE * SIZE, images.device)
    new = perturbation.streamed_curves(engine(model, batch_size), images, black, positions, counts, targets,
                                       reveal=reveal)
    assert torch.equal(new, old)  # same rows, same chunks, same arithmetic: bit for bit
    bottom = perturbation.pixel_positions(scores, from_bottom=True)
    assert torch.equal(perturbation.streamed_curves(engine(model, batch_size), images, black, bottom, counts, targets,
                                                    reveal=reveal),
                       perturbation.curves(engine(model, batch_size), images, black,
                                           top_masks(scores, fractions, from_bottom=True), targets, reveal=reveal))
    # Guard: the other direction is a different curve, so the comparison can fail.
    flipped = perturbation.streamed_curves(engine(model, batch_size), images, black, positions, counts, targets,
                                           reveal=not reveal)
    assert not torch.allclose(flipped, old)


def test_pixel_positions_are_top_masks(case):
    _, _, scores, _ = case
    fractions = np.array([0.0, 0.1, 0.37, 1.0])
    for from_bottom in (False, True):
        positions = perturbation.pixel_positions(scores, from_bottom=from_bottom).view(3, 1, SIZE, SIZE)
        counts = perturbation.level_counts(fractions, SIZE * SIZE, scores.device).view(1, -1, 1, 1)
        assert torch.equal(positions < counts, top_masks(scores, fractions, from_bottom=from_bottom))


class Widest(torch.nn.Module):
    """Records the widest input a forward pass got and the row count of each pass."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.inner, self.calls = inner, []

    def forward(self, x):
        self.calls.append(x.shape[0])
        return self.inner(x)


def test_engine_row_counts_are_the_forward_pass_bound(case):
    """Insertion + deletion: 1 + 21 + 21 rows per image (the original shared), ABPC 2 x 11: the counts the
    benchmark's bound assumes, in chunks of at most batch_size rows (the most a batch ever builds at once)."""
    images, black, scores, targets = case
    model = Widest(tiny_convnet(seed=1))
    measuring = engine(model, 8)
    perturbation.insertion_deletion(measuring, images, black, scores, targets)
    assert measuring.rows_evaluated == 3 * (1 + 21 + 21) == sum(model.calls) and max(model.calls) <= 8
    assert model.calls == [3] + [8] * 7 + [7] + [8] * 7 + [7]  # one partial chunk per stream
    measuring = engine(model, 8)
    perturbation.abpc(measuring, images, scores, targets)
    assert measuring.rows_evaluated == 3 * 2 * 11


def test_a_bad_target_is_still_refused_with_the_image_named(case):
    from igcli.errors import TargetError

    images, _, scores, _ = case
    with pytest.raises(TargetError, match="target 9 of image 2 is outside the model's 5 classes"):
        perturbation.abpc(engine(tiny_convnet(), 4), images, scores, torch.tensor([0, 1, 9]))


# -- SIC/AIC: WebP encodes in a process pool ---------------------------------------------------------------------


def pictures(count: int, size: int = 48) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    out = []
    for _ in range(count):
        pixels = rng.integers(0, 256, (size, size, 3)).astype(np.uint8)
        pixels[: size // 2] = rng.integers(100, 140, (size // 2, size, 3))  # some structure to compress
        out.append(pixels)
    return out


@pytest.fixture(scope="module")
def pool():
    started = webp.make_pool(1)
    yield started
    webp.shutdown(started)


def test_pooled_encodes_equal_the_serial_ones(pool):
    model = tiny_convnet(seed=2)
    images = pictures(3)
    scores = [np.random.default_rng(i).random((48, 48)) for i in range(3)]
    args = (engine(model, 16), images, scores, [0, 1, 2], lambda s: s.float() / 255, [5, 6, 7])
    serial = pic.measure_batch(*args, levels=("entropy",))
    pooled = pic.measure_batch(*args, levels=("entropy",), pool=pool)
    for one, other in zip(serial, pooled):
        assert np.array_equal(one.entropy, other.entropy) and np.all(one.entropy > 0)
        assert np.array_equal(one.probability, other.probability)
    assert [f.result() for f in webp.submit(pool, np.stack(images))] == webp.webp_sizes(np.stack(images))
    # Guard: the sizes tell the pictures apart, so equal lists mean the same encodes.
    assert not np.array_equal(serial[0].entropy, serial[1].entropy)


def test_workers_leave_ctrl_c_to_the_main_process(pool):
    pool.submit(int).result()
    worker = next(iter(pool._processes.values()))
    os.kill(worker.pid, signal.SIGINT)
    os.kill(worker.pid, signal.SIGTERM)  # the group's first SIGTERM is the main process's to act on
    time.sleep(0.2)
    assert worker.is_alive()
    assert webp.submit(pool, np.stack(pictures(1)))[0].result() == pic.webp_size(pictures(1)[0])


def test_default_workers_leave_the_model_its_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(8)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert webp.default_workers("cpu", 2) == 6 and webp.default_workers("cuda", 8) == 7
    assert webp.default_workers("cpu", 8) == 1  # at least one
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert webp.default_workers("cuda", 1) == 1


def test_the_evaluate_job_scores_alike_with_its_pool_and_shuts_it_down(tmp_path, monkeypatch):
    from test_evaluate import REGION, write_output

    import importlib

    from igcli.results_store import read_results
    from igcli.signals import Interrupted

    job_module = importlib.import_module("igcli.jobs.evaluate")  # igcli.jobs.evaluate is also a function's name
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):  # a bright top-left corner (the Region model's class 0) that blurring darkens
        pixels = rng.integers(0, 60, (16, 16, 3), dtype=np.uint8)
        pixels[:8, :8] = rng.integers(230, 256, (8, 8, 3))
        Image.fromarray(pixels).save(folder / f"img{i}.png")
        paths.append(folder / f"img{i}.png")
    write_output(tmp_path / "out", paths, rng.random((3, 3, 16, 16)), "ig")
    pools = []
    real_make_pool = job_module.make_pool
    monkeypatch.setattr(job_module, "make_pool", lambda workers: pools.append(real_make_pool(workers)) or pools[-1])

    def run(workers, name):
        return job_module.evaluate(job_module.EvaluateJob(
            tmp_path / "out", metrics=("sic", "aic"), model=REGION, device="cpu", encode_workers=workers,
            results=tmp_path / name), quiet=True)

    serial, pooled = run(0, "serial"), run(1, "pooled")
    assert len(pools) == 1 and pools[0]._processes is None  # the run's pool, shut down at its end
    assert serial.aggregate["sic"]["count"] == 3
    one, other = read_results(serial.folder), read_results(pooled.folder)
    for name in ("sic", "aic"):
        assert np.array_equal(np.concatenate(one.values[name]), np.concatenate(other.values[name]))
        assert np.array_equal(np.concatenate(one.curves[name]), np.concatenate(other.curves[name]))

    def interrupted(*args, **kwargs):
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(job_module, "score_rows", interrupted)
    result = run(1, "stopped")
    workers = list(pools[-1]._processes.values()) if pools[-1]._processes else []
    assert result.interrupted and len(pools) == 2 and pools[-1]._processes is None
    assert not any(worker.is_alive() for worker in workers)


# -- recomputing metrics: one recompute call per batch (per path) -----------------------------------------------


class Calls:
    """recompute(images, targets, start=None) through the job's _Recompute, counting calls and rows."""

    def __init__(self, model, paths, **options) -> None:
        self.model, self.calls, self.options = model, [], options

        def run(images, targets, paths, baseline=None, keys=None):
            self.calls.append(images.shape[0])
            return attribute(model, images, targets, method="ig", steps=6, batch_size=16,
                             baseline=baseline if baseline is not None else "black", keys=keys,
                             check_completeness=False, **self.options).attributions

        self.recompute = _Recompute(run, list(paths), list(paths))


def old_jpeg_stability(recompute, pixels, to_input, targets):
    """jpeg_stability as it was: one recompute call for the crops, one for their JPEG."""
    compressed = torch.stack([torch.from_numpy(stability.jpeg(p.permute(1, 2, 0).numpy())).permute(2, 0, 1)
                              for p in pixels])
    original = recompute(to_input(pixels), targets).flatten(1).double()
    moved = recompute(to_input(compressed), targets).flatten(1).double()

    def scaled(maps):
        return maps / maps.abs().max(dim=1, keepdim=True).values.clamp_min(1e-300)

    return -torch.log((scaled(original) - scaled(moved)).square().mean(dim=1).clamp_min(1e-300))


def old_closed_path(recompute, images, targets, paths, seed, normalization, count):
    """closed_path_error as it was: one recompute call per segment."""
    from igcli.text import path_seed, torch_seed

    generators = [torch.Generator().manual_seed(torch_seed(path_seed(seed, p, 0x5EED))) for p in paths]
    total = torch.zeros(images.shape[0], dtype=torch.float64)
    for _ in range(count):
        corners = [normalization.from_pixels(torch.stack([torch.rand(images.shape[1:], generator=g) for g in generators])
                                             ).to(images.dtype) for _ in range(2)]
        points = [images, *corners, images]
        summed = sum(recompute(end, targets, start).flatten(1).double() for start, end in zip(points[:-1], points[1:]))
        total += summed.square().mean(dim=1)
    return total / count


NORMALIZATION = Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
PATHS = ["a.png", "b.png", "c.png"]


def to_input(pixels: torch.Tensor) -> torch.Tensor:
    return NORMALIZATION.from_pixels(pixels.double() / 255)


@pytest.mark.parametrize("options", [{}, {"noise_samples": 2, "noise_level": 0.1}], ids=["ig", "smoothgrad"])
def test_jpeg_stability_in_one_call_equals_two_calls(options):
    model = tiny_convnet(seed=4).double()  # float64: a chunk of other rows changes the maps by ~1e-16, not 1e-7
    pixels = torch.as_tensor(np.random.default_rng(1).integers(0, 256, (3, 3, SIZE, SIZE)), dtype=torch.uint8)
    targets = torch.tensor([0, 2, 4])
    new, old = Calls(model, PATHS, **options), Calls(model, PATHS, **options)
    batched = stability.jpeg_stability(new.recompute, pixels, to_input, targets)
    per_call = old_jpeg_stability(old.recompute, pixels, to_input, targets)
    assert new.calls == [6] and old.calls == [3, 3]
    np.testing.assert_allclose(batched.numpy(), per_call.numpy(), rtol=1e-10)
    # Guard: the maps of other classes give other numbers, and the comparison sees it.
    other = old_jpeg_stability(Calls(model, PATHS, **options).recompute, pixels, to_input, targets.roll(1))
    assert not np.allclose(other.numpy(), per_call.numpy(), rtol=1e-3, atol=0)


def test_closed_path_in_one_call_per_path_equals_one_call_per_segment():
    model = tiny_convnet(seed=5).double()
    images = NORMALIZATION.from_pixels(torch.rand((3, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(2)))
    images = images.double()
    targets = torch.tensor([1, 0, 3])
    new, old = Calls(model, PATHS), Calls(model, PATHS)
    batched = stability.closed_path_error(new.recompute, images, targets, PATHS, 7, NORMALIZATION, count=3)
    per_call = old_closed_path(old.recompute, images, targets, PATHS, 7, NORMALIZATION, 3)
    assert new.calls == [9] * 3 and old.calls == [3] * 9
    # The segments' maps (~1e-1) cancel to a sum of ~1e-4 whose square is the value (~1e-8): float64 rounding of
    # the maps, which differs with the rows batched together, shows at 1e-8 relative.
    np.testing.assert_allclose(batched.numpy(), per_call.numpy(), rtol=1e-6)
    assert np.all(per_call.numpy() > 0)
    # Guard: other paths draw other corners, and the comparison sees it.
    renamed = ["x.png", "y.png", "z.png"]
    other = old_closed_path(Calls(model, renamed).recompute, images, targets, renamed, 7, NORMALIZATION, 3)
    assert not np.allclose(other.numpy(), per_call.numpy(), rtol=1e-3, atol=0)

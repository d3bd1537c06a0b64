"""The hot loops never make the host wait for the device: counted on CPU (see tests/sync_counter.py).

Each path method's count of would-be host-device synchronisations per ``igcli.attribute`` call must not grow
with the number of steps or of images: what is left is a handful per call (input and target checks, the
finiteness flags, the schedule's tables copied to the device, the completeness gaps read back).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import igcli
import igcli.integrate
from igcli.methods import get_method, method_names
from igcli.paths import guided

from conftest import tiny_convnet
from sync_counter import count_syncs

PATH_METHODS = [name for name in method_names() if get_method(name).has_path]
RULES = ("riemann", "idgi")


@pytest.fixture(autouse=True)
def the_gpu_loops(monkeypatch):
    """Count the loops a GPU runs: on a CPU, Guided IG checks its inner loop (free there) unless told not to."""
    monkeypatch.setattr(igcli.integrate, "SYNC_FREE_ON_HOST", True)


def images(count: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.rand((count, 3, 16, 16), generator=generator)


def counted(method: str, rule: str | None, count: int, steps: int, **ensemble):
    """(total, by call site) of one attribute call; the inputs and the model are made outside the count."""
    model, x = tiny_convnet(), images(count)
    options = {} if rule is None else {"rule": rule, "steps": steps}
    if "references" in ensemble:
        ensemble["references"] = images(ensemble["references"])  # made outside: on the device
    with warnings.catch_warnings(), count_syncs() as counter:
        warnings.simplefilter("ignore")  # completeness warnings of a tiny untrained model
        igcli.attribute(model, x, method=method, batch_size=4, device="cpu", **options, **ensemble)
    return counter.total, counter.by_site()


# -- the counter counts what syncs on CUDA, and only that ----------------------------------------------------


def test_the_counter_counts_each_kind_of_sync_and_nothing_on_host_tensors():
    device_tensor = torch.arange(6.0)  # made outside: stands for a tensor on the device
    with count_syncs() as counter:
        float(device_tensor.sum())  # scalar read
        bool((device_tensor > 2).any())  # scalar read
        device_tensor[device_tensor > 2]  # boolean mask: nonzero
        device_tensor.nonzero()
        device_tensor.tolist()  # device -> host
        index = torch.from_numpy(np.array([0, 2])).to(device_tensor.device)  # host -> device
        torch.as_tensor([1.0, 2.0], device=device_tensor.device)  # host -> device
        device_tensor[torch.tensor([1, 3])]  # a host index tensor meets a device tensor: implicit copy
        # none of these waits
        (device_tensor[index] * 2).sum() + torch.where(device_tensor > 2, device_tensor, 0.0)
        torch.arange(4, device=device_tensor.device) % 3
        host = torch.arange(3)
        int(host.sum()), host.tolist(), host[host > 0]
    assert counter.by_kind() == {"scalar": 2, "shape": 2, "to_host": 1, "to_device": 3}


# -- the methods ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("method", PATH_METHODS)
def test_syncs_per_call_do_not_grow_with_steps_or_images(method, rule):
    few_steps, few_sites = counted(method, rule, 3, 8)
    many_steps, many_sites = counted(method, rule, 3, 32)
    more_images, more_sites = counted(method, rule, 6, 8)
    assert many_steps == few_steps, f"8 steps: {few_sites}\n32 steps: {many_sites}"
    assert more_images == few_steps, f"3 images: {few_sites}\n6 images: {more_sites}"
    assert few_steps <= 16, few_sites  # a handful per call, see the module docstring


@pytest.mark.parametrize("rule", RULES)
def test_steps_auto_waits_for_the_device_once_per_round_whatever_the_number_of_images(rule):
    """The host decides which cells to halve from one copy per refinement round; copies of one image refine
    alike, so 2 and 6 of them take the same rounds and must cost the same syncs."""
    model = tiny_convnet()

    def run(count: int):
        x = images(1).expand(count, -1, -1, -1).contiguous()
        rounds = []
        with warnings.catch_warnings(), count_syncs() as counter:
            warnings.simplefilter("ignore")
            result = igcli.attribute(model, x, method="ig", rule=rule, steps="auto", tolerance=1e-7, max_steps=64, batch_size=4,
                                     device="cpu", progress=rounds.append)  # told once per round
        return counter.total, counter.by_site(), result, len(rounds)

    few, few_sites, result, rounds = run(2)
    more, more_sites, _, _ = run(6)
    assert more == few, f"2 images: {few_sites}\n6 images: {more_sites}"
    assert int(result.evaluations[0]) > 9 and rounds > 3  # it refined, over several rounds
    in_refinement = sum(count for site, count in few_sites.items() if site.startswith("igcli/adaptive"))
    assert in_refinement == rounds + 1, few_sites  # and one read of the scores at the end


def test_vanilla_gradient_syncs_do_not_grow_with_images():
    few, few_sites = counted("vg", None, 3, 1)
    more, more_sites = counted("vg", None, 6, 1)
    assert few == more, f"3 images: {few_sites}\n6 images: {more_sites}"


ENSEMBLES = {
    "noise": dict(noise_samples=2, noise_aggregate="vargrad"),
    "references": dict(references=5, baseline_samples=2, noise_samples=1),
    "baselines": dict(baseline=["black", "white"]),
}


@pytest.mark.parametrize("ensemble", sorted(ENSEMBLES))
@pytest.mark.parametrize("method", ["vg", "ig", "gig", "blurig"])
def test_ensemble_syncs_do_not_grow_with_samples_or_images(method, ensemble):
    settings = dict(ENSEMBLES[ensemble])
    if method in ("vg", "blurig") and ensemble != "noise":
        pytest.skip("takes no baseline")
    rule = None if method == "vg" else "idgi"
    few, few_sites = counted(method, rule, 3, 4, **settings)
    more = dict(settings, **{key: value * 3 for key, value in settings.items() if key.endswith("_samples")})
    if ensemble == "baselines":
        more["baseline"] = ["black", "white", "blur", "black"]
    many, many_sites = counted(method, rule, 3, 4, **more)
    more_images, more_images_sites = counted(method, rule, 6, 4, **settings)
    if method == "gig":  # one "did every step settle?" flag per Guided IG walk over a group of members
        few, many, more_images = (total - _guided_flags(sites)
                                  for total, sites in ((few, few_sites), (many, many_sites), (more_images, more_images_sites)))
    assert many == few, f"few samples: {few_sites}\nmore: {many_sites}"
    assert more_images == few, f"3 images: {few_sites}\n6 images: {more_images_sites}"


def _guided_flags(sites: dict[str, int]) -> int:
    flags = [count for site, count in sites.items() if site.startswith(f"igcli/integrate.py:{GUIDED_FLAG_LINE} ")]
    return sum(flags)


GUIDED_FLAG_LINE = next(number for number, line in enumerate(open(igcli.integrate.__file__), 1)
                        if "if bool(unsettled):" in line)


def test_expected_gradients_syncs_do_not_grow_with_samples_or_images():
    few, few_sites = counted("eg", None, 3, 1, samples=4, references=5)
    many, many_sites = counted("eg", None, 3, 1, samples=40, references=5)
    more_images, more_images_sites = counted("eg", None, 6, 1, samples=4, references=5)
    assert many == few == more_images, f"{few_sites}\n{many_sites}\n{more_images_sites}"


def test_guided_steps_never_ask_the_device_whether_they_are_done():
    _, sites = counted("gig", "riemann", 3, 8)
    assert not any("paths/guided.py" in site for site in sites), sites


# -- Guided IG's fixed inner iterations give the checked loop's result ---------------------------------------


def test_unsettled_guided_steps_are_redone_with_the_checked_loop(monkeypatch):
    x = images(3)
    options = dict(method="gig", steps=6, batch_size=4, device="cpu", check_completeness=False, max_dist=0.1)
    expected = igcli.attribute(tiny_convnet(), x, **options).attributions
    # Too few iterations for any step to settle: the flag must send the path through the checked loop.
    monkeypatch.setattr(guided, "settling_rounds", lambda features, fraction: 1)
    redone = igcli.attribute(tiny_convnet(), x, **options).attributions
    assert torch.equal(redone, expected)


def test_the_host_loop_and_the_gpu_loop_give_the_same_maps(monkeypatch):
    x = images(3)
    options = dict(method="gig", steps=6, batch_size=4, device="cpu", check_completeness=False, max_dist=0.1)
    gpu_loop = igcli.attribute(tiny_convnet(), x, **options).attributions
    monkeypatch.setattr(igcli.integrate, "SYNC_FREE_ON_HOST", False)
    host_loop = igcli.attribute(tiny_convnet(), x, **options).attributions
    assert torch.equal(host_loop, gpu_loop)


def test_fixed_inner_iterations_equal_the_checked_loop_bit_for_bit():
    generator = torch.Generator().manual_seed(3)
    shape = (3, 2, 5, 6)
    start, end = (torch.rand(shape, generator=generator, dtype=torch.float64) for _ in range(2))
    end[0] = start[0]  # a segment of zero length
    end.view(-1)[::4] = start.view(-1)[::4]  # features that do not move
    for fraction, max_dist in [(0.25, 0.02), (0.1, 1.0), (1.0, 0.0), (0.5, 1e-14)]:
        x = start.clone()
        unsettled = torch.zeros((), dtype=torch.bool)
        for k in range(1, 9):
            gradients = torch.randint(0, 3, shape, generator=generator).double()  # ties at the threshold
            checked = guided.advance(x, gradients, start, end, k / 8, fraction, max_dist)
            fixed = guided.advance(x, gradients, start, end, k / 8, fraction, max_dist, unsettled=unsettled)
            assert torch.equal(fixed, checked), (fraction, max_dist, k)
            x = checked
        assert not bool(unsettled)


# -- evaluate: a batch of stored maps through the metrics ---------------------------------------------------


def _evaluate_syncs(tmp_path, names, count):
    from cli_helpers import make_images
    from igcli.engine import Engine
    from igcli.jobs.evaluate_batch import Scorer, score_rows
    from igcli.metrics.catalog import get_metric, parse_metric_options
    from igcli.models import Preprocessing

    paths = [str(p) for p in make_images(tmp_path / f"imgs{count}", count, size=16)]
    preprocessing = Preprocessing.from_dict({"resize": 8, "crop": 8, "mean": [0.5] * 3, "std": [0.5] * 3,
                                             "interpolation": "bilinear"})
    model = tiny_convnet()
    engine = Engine(model, output="prob", batch_size=4, device=torch.device("cpu"), amp=False)
    # ROAD's device solver (CG); a host solver copies each image to the host by nature.
    options = parse_metric_options(["road.solver=cg"] if "road" in names else None, names)
    scorer = Scorer([get_metric(name) for name in names], options, "signed", 0,
                    torch.device("cpu"), preprocessing, engine=engine, module=model)
    rows = {"attributions": np.random.default_rng(0).random((count, 3, 8, 8)).astype(np.float32), "paths": paths,
            "image_paths": paths, "targets": np.zeros(count, np.int64), "completeness_gap": np.zeros(count)}
    with count_syncs() as counter:
        score_rows(scorer, rows, lambda line: None)
    return counter.total, counter.by_site()


def test_evaluate_syncs_per_batch_do_not_grow_with_images(tmp_path):
    """Perturbed images are built on the device for the whole batch; each metric reads its results back once."""
    names = ["insertion", "deletion", "abpc", "road", "infidelity", "gini", "entropy"]
    few, few_sites = _evaluate_syncs(tmp_path, names, 2)
    more, more_sites = _evaluate_syncs(tmp_path, names, 6)
    assert few == more, f"2 images: {few_sites}\n6 images: {more_sites}"

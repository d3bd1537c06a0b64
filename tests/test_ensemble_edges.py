"""Ensembles at their edges: hostile reference folders, absurd sizes, references that do not fit the inputs,
the error bar of references drawn without replacement, and shards whose ensemble settings contradict."""

import os
import threading

import pytest
import torch

from igcli.models import Preprocessing
from igcli.ensembles.references import FolderReferences
from igcli.errors import InvalidArgumentError

from cli_helpers import make_images


def _finishes(function, seconds=20.0):
    """What ``function()`` returned or raised, run in a thread that must finish within ``seconds``."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as error:  # noqa: BLE001 (handed back to the test)
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "hung"
    return outcome


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_in_the_reference_folder_is_refused_not_waited_on(tmp_path):
    make_images(tmp_path / "refs", 2, seed=3, prefix="ref")
    os.mkfifo(tmp_path / "refs" / "pipe.png")  # opening it to read would wait for a writer for ever
    outcome = _finishes(lambda: FolderReferences(str(tmp_path / "refs"), Preprocessing(resize=16, crop=16)))
    error = outcome.get("error")
    assert isinstance(error, InvalidArgumentError), outcome
    assert "pipe.png" in str(error) and "\n" not in str(error)



@pytest.mark.parametrize("settings, option", [
    (dict(method="ig", noise_samples=10**13), "--noise-samples"),
    (dict(method="eg", samples=10**13), "--samples"),
    (dict(method="ig", references=True, baseline_samples=10**13), "--baseline-samples"),
    (dict(method="eg", samples=1000, noise_samples=1000), "--noise-samples"),
])
def test_an_absurd_number_of_draws_is_refused_before_anything_is_allocated(settings, option):
    """10^13 draws per image would take all the machine's memory (the run was killed, or a MemoryError
    traceback): :func:`igcli.describe`, the check :func:`igcli.attribute` and the CLI make first, refuses it in
    one line naming the option, as it refuses --steps beyond 100,000."""
    import igcli

    with pytest.raises(InvalidArgumentError) as caught:
        igcli.describe(settings.pop("method"), "riemann", steps=2, **settings)
    assert option in str(caught.value) and "\n" not in str(caught.value)


def _tampered_output(tmp_path, settings, patch):
    """An output of a real ensemble run whose shards' ``settings_json`` is then changed by ``patch``."""
    import json

    import h5py

    from igcli.jobs import AttributeJob, run_attribute
    from igcli.output import Output
    from igcli.store import list_shards

    from cli_helpers import TINY

    make_images(tmp_path / "imgs", 2)
    make_images(tmp_path / "refs", 3, seed=7, prefix="ref")
    if "baseline_dir" in settings:
        settings = dict(settings, baseline_dir=str(tmp_path / settings["baseline_dir"]))
    job = AttributeJob(inputs=[str(tmp_path / "imgs")], out=tmp_path / "out", model=TINY, device="cpu", steps=2,
                       preprocessing={"resize": 16, "crop": 16}, workers=0, **settings)
    assert run_attribute(job, quiet=True).exit_code == 0
    for shard in list_shards(tmp_path / "out"):
        with h5py.File(shard, "r+") as handle:
            stored = dict(json.loads(handle.attrs["settings_json"]), **patch)
            handle.attrs["settings_json"] = json.dumps(stored)
    (tmp_path / "out" / "index.h5").unlink(missing_ok=True)
    return Output(tmp_path / "out")


@pytest.mark.parametrize("settings, patch", [
    (dict(method="ig", noise_samples=2), {"noise_samples": -3}),
    (dict(method="ig", noise_samples=2), {"noise_samples": 0}),  # a noise level left without noise
    (dict(method="ig", noise_samples=2), {"noise_samples": 10**13}),
    (dict(method="ig", noise_samples=2), {"baseline_samples": 2}),  # drawn references without a folder
    (dict(method="ig", noise_samples=2), {"noise_aggregate": "vargrad", "noise_samples": 1}),
    (dict(method="eg", baseline_dir="refs", method_options={"samples": 2}), {"baseline": ["black", "white"]}),
    (dict(method="eg", baseline_dir="refs", method_options={"samples": 2}), {"samples": 0}),
])
def test_contradictory_ensemble_settings_in_a_shard_are_refused_when_the_recipe_is_rebuilt(tmp_path, settings,
                                                                                            patch):
    """Settings each of the right type but together impossible (or absurd) are refused when ``evaluate``
    rebuilds the attribution function, so it names the shard (exit 6) instead of failing later, mid-run, with
    a message about a command-line option the user never gave (exit 2), or running out of memory."""
    import igcli
    from igcli.models import load_model

    from cli_helpers import TINY

    output = _tampered_output(tmp_path, settings, patch)
    loaded = load_model(TINY, preprocessing={"resize": 16, "crop": 16})
    with pytest.raises(InvalidArgumentError):
        output.recipe.attribution_function(loaded, torch.device("cpu"), 2)


@pytest.mark.parametrize("references", [
    torch.zeros(4, 1, 8, 8),  # one channel: broadcast over the inputs' three, silently
    torch.zeros(4, 3, 4, 4),  # another size: a RuntimeError from deep inside torch
    torch.zeros(4, 3, 8, 8).numpy(),  # not a tensor: a TypeError, or an AttributeError for a list
    [torch.zeros(3, 8, 8)],
])
def test_references_that_do_not_fit_the_inputs_are_refused_naming_them(references):
    import igcli
    from igcli.errors import IgcliError

    with pytest.raises(IgcliError, match="references") as caught:
        igcli.attribute(_tiny_model(), torch.rand(2, 3, 8, 8), 0, method="eg", samples=2, references=references,
                        device="cpu")
    assert "\n" not in str(caught.value)


def _tiny_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.Flatten(), torch.nn.Linear(72, 3)).eval()


def test_the_error_bar_of_references_drawn_without_replacement_has_the_finite_population_correction():
    """K references drawn distinct out of R: the mean's variance is s^2 / K x (1 - K / R) (Cochran 1977,
    "Sampling Techniques", Thm 2.2, s^2 the members' sample variance). With K = R every reference is used, the
    map is the same whatever the seed, and its error bar is 0 (it was reported as if drawn with replacement)."""
    import igcli
    from igcli.ensembles.draws import ImageDraws

    torch.manual_seed(1)
    model, images, references = _tiny_model(), torch.rand(2, 3, 8, 8), torch.rand(4, 3, 8, 8)
    keys = ["a", "b"]

    def run(count, seed=0):
        return igcli.attribute(model, images, 0, method="ig", steps=2, references=references,
                               baseline_samples=count, keys=keys, seed=seed, device="cpu")

    everything = [run(4, seed) for seed in (0, 1)]
    torch.testing.assert_close(everything[0].attributions, everything[1].attributions, rtol=1e-6, atol=1e-9)
    assert everything[0].relative_se.tolist() == [0.0, 0.0]

    drawn = run(2)
    chosen = ImageDraws(0, keys).references(0, 2, 4)
    members = torch.stack([igcli.attribute(model, images, 0, method="ig", steps=2, baseline=references[chosen[:, k]],
                                           device="cpu").attributions.double() for k in range(2)])
    variance = members.var(dim=0) / 2 * (1 - 2 / 4)
    expected = variance.sqrt().flatten(1).norm(dim=1) / members.mean(dim=0).flatten(1).norm(dim=1)
    torch.testing.assert_close(drawn.relative_se.double(), expected, rtol=1e-4, atol=0)


def test_a_baseline_given_with_references_is_refused_not_ignored(tmp_path):
    """References replace the baseline: one given as well (``--baseline white --baseline-dir refs``) was dropped
    without a word, recorded, and then made a --resume with the same maps refuse over it."""
    import igcli

    from cli_helpers import COMMON, run_cli

    with pytest.raises(InvalidArgumentError, match="replaces --baseline"):
        igcli.describe("ig", "riemann", baseline="white", references=True, baseline_samples=2)
    with pytest.raises(InvalidArgumentError, match="replaces --baseline"):
        igcli.describe("eg", "riemann", baseline="uniform", references=True)
    make_images(tmp_path / "imgs", 1)
    make_images(tmp_path / "refs", 2, seed=7, prefix="ref")
    for method in (["--method", "ig", "--baseline-samples", "2"], ["--method", "eg", "--samples", "2"]):
        result = run_cli("attribute", "imgs", "-o", "out", *COMMON, *method, "--baseline-dir", "refs",
                         "--baseline", "black", cwd=tmp_path)
        assert result.returncode == 2 and "replaces --baseline" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_numpy_scalars_are_counts_and_levels_like_python_numbers():
    """``noise_samples=np.int64(2)`` (from an array of settings) was refused as "must be an integer", while
    Expected Gradients' ``samples`` took it; the settings recorded stay plain JSON."""
    import json

    import numpy as np

    import igcli

    settings = igcli.describe("ig", "riemann", steps=2, noise_samples=np.int64(2), noise_level=np.float32(0.25),
                              references=True, baseline_samples=np.int32(3))
    assert (settings["noise_samples"], settings["noise_level"], settings["baseline_samples"]) == (2, 0.25, 3)
    json.dumps(settings)
    for bad in (2.0, True, "2"):
        with pytest.raises(InvalidArgumentError, match="--noise-samples"):
            igcli.describe("ig", "riemann", noise_samples=bad)

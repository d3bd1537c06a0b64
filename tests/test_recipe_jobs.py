"""The run recipe through real jobs, for every registered method x rule: what a run stores is what it used,
``--resume`` compares it, and ``evaluate``'s recompute rebuilds exactly the stored maps from it."""

import json

import h5py
import numpy as np
import pytest
import torch

from igcli.jobs import AttributeJob, run_attribute
from igcli.methods import RULE_NAMES, get_method, method_names
from igcli.models import load_model
from igcli.output import Output
from igcli.recipe import RECIPE_FORMAT, Recipe
from igcli.store import list_shards
from igcli.validate import OutputError

from cli_helpers import TINY, make_images

PREPROCESSING = {"resize": 16, "crop": 16}
COMBOS = [(m, r) for m in method_names() for r in RULE_NAMES if get_method(m).has_path or r == "riemann"]


def small_options(method):
    """Options that suit 16 x 16 images: a blur narrower than the default 50 pixels, where a method blurs."""
    return {"max_sigma": 4.0} if any(o.name == "max_sigma" for o in get_method(method).options) else {}


def run(tmp_path, method, rule, **changes):
    job = AttributeJob(inputs=[str(tmp_path / "imgs")], out=tmp_path / "out", model=TINY, device="cpu", steps=4,
                       preprocessing=PREPROCESSING, workers=0, method=method, rule=rule,
                       method_options=small_options(method), **changes)
    return run_attribute(job, quiet=True)


@pytest.mark.parametrize(("method", "rule"), COMBOS)
def test_the_stored_recipe_rebuilds_exactly_the_stored_maps(tmp_path, method, rule):
    make_images(tmp_path / "imgs", 3)
    assert run(tmp_path, method, rule, reduce="sum").exit_code == 0
    output = Output(tmp_path / "out")
    recipe = output.recipe
    assert (recipe.method, recipe.rule or "riemann", recipe.reduce) == (method, rule, "sum")
    assert recipe.options == get_method(method).resolve_options(small_options(method))
    assert Recipe.from_settings(recipe.as_settings()) == recipe  # the stored form reads back to the same recipe
    loaded = load_model(TINY, preprocessing=PREPROCESSING)
    recompute = recipe.attribution_function(loaded, torch.device("cpu"), batch_size=4)
    rows = next(output.iter_rows(["attributions", "paths", "image_paths", "draw_keys", "targets"]))
    images = torch.stack([_model_input(path, loaded) for path in rows["image_paths"]])
    again = recompute(images, torch.as_tensor(rows["targets"]), list(rows["paths"]), keys=list(rows["draw_keys"]))
    np.testing.assert_allclose(again.numpy(), rows["attributions"], rtol=1e-5, atol=1e-7)


def _model_input(path, loaded):
    from igcli.data import load_rgb, normalize, preprocess_pixels

    pixels = preprocess_pixels(load_rgb(path, exif_transpose=loaded.preprocessing.exif_transpose), loaded.preprocessing)
    return normalize(pixels[None], loaded.preprocessing)[0]


def test_resume_names_a_changed_method_option(tmp_path):
    make_images(tmp_path / "imgs", 2)
    run(tmp_path, "gig", "riemann")
    with pytest.raises(OutputError, match=r"fraction=0\.25 but this run has fraction=0\.5"):
        job = AttributeJob(inputs=[str(tmp_path / "imgs")], out=tmp_path / "out", model=TINY, device="cpu", steps=4,
                           preprocessing=PREPROCESSING, workers=0, method="gig", method_options={"fraction": 0.5},
                           resume=True)
        run_attribute(job, quiet=True)


def test_a_folder_written_before_the_recipe_had_a_format_reads_and_resumes(tmp_path):
    # Shards of igcli before the recipe: settings_json without "recipe" and "option_names" (and no such
    # attributes). They read as the same recipe, and --resume continues them.
    make_images(tmp_path / "imgs", 3)
    run(tmp_path, "blurig", "idgi", shard_size=1)
    current = Output(tmp_path / "out").recipe
    for shard in list_shards(tmp_path / "out"):
        with h5py.File(shard, "r+") as handle:
            settings = json.loads(handle.attrs["settings_json"])
            assert settings.pop("recipe") == RECIPE_FORMAT and settings.pop("option_names")
            handle.attrs["settings_json"] = json.dumps(settings)
            for key in ("recipe", "option_names"):
                del handle.attrs[key]
    old = Output(tmp_path / "out").recipe
    assert old == current and old.options == {"max_sigma": 4.0, "blur_padding": "constant", "blur_derivative": "exact"}
    shards = sorted(list_shards(tmp_path / "out"))
    shards[-1].unlink()  # the last image is to be done again
    summary = run(tmp_path, "blurig", "idgi", shard_size=1, resume=True)
    assert (summary.already_done, summary.attributed) == (2, 1)


@pytest.mark.parametrize("named", ["os:system", "igcli_meanig", "../evil.py:run", "subprocess"])
def test_a_method_named_by_a_folder_is_looked_up_in_the_registry_only(named):
    # An output folder is data: the method it names is a registry entry or nothing; nothing is imported by it.
    import sys

    from igcli.errors import InvalidArgumentError

    before = set(sys.modules)
    with pytest.raises(InvalidArgumentError, match="not installed here"):
        Recipe(method=named).method_object()
    assert set(sys.modules) - before == set()

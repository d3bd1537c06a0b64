"""``--steps auto`` through real jobs: the four per-row columns hold what the library returned for each image,
they survive the index, a damaged one is caught; ``--resume`` continues with the same maps and refuses a changed
tolerance; ``evaluate``'s recompute rebuilds exactly the stored maps; every refusal names its option. (The
refinement itself is tested against known integrals in test_adaptive*.py.)"""

import h5py
import numpy as np
import pytest
import torch

import igcli
from igcli.captions import method_title
from igcli.cli.attribute import summary_line
from igcli.errors import InvalidArgumentError
from igcli.jobs import AttributeJob, run_attribute
from igcli.jobs.checks import check_attribute_job
from igcli.models import load_model
from igcli.output import Output
from igcli.recipe import Recipe
from igcli.store import INDEX_NAME, list_shards
from igcli.validate import DamagedShardError, OutputError, check_shard

from cli_helpers import TINY, make_images, run_cli

PREPROCESSING = {"resize": 16, "crop": 16}
# A target tight enough that the tiny model's maps refine past the first mesh, and a cap that stops some of
# them short of it (measured: 29 evaluations each, two of the four maps met the tolerance).
AUTO = dict(steps="auto", step_tolerance=0.0013, min_steps=4, max_steps=30, output="logit")
COLUMNS = ("gradient_evaluations", "error_estimate", "tolerance_met", "step_points")


def run(tmp_path, out="out", **settings):
    job = AttributeJob(inputs=[str(tmp_path / "imgs")], out=tmp_path / out, model=TINY, device="cpu",
                       preprocessing=PREPROCESSING, workers=0, **{**AUTO, **settings})
    return run_attribute(job, quiet=True)


def stored(tmp_path, out="out"):
    """Every row of an output, sorted by path: column -> array; and the Output."""
    output = Output(tmp_path / out)
    rows = {}
    for chunk in output.iter_rows(["attributions", "paths", "image_paths", "targets", *COLUMNS]):
        for key, values in chunk.items():
            rows.setdefault(key, []).extend(values)
    order = np.argsort(rows["paths"])
    return output, {key: np.asarray(values)[order] for key, values in rows.items()}


def model_inputs(paths, loaded):
    from igcli.data import load_rgb, normalize, preprocess_pixels

    pixels = [preprocess_pixels(load_rgb(path, exif_transpose=loaded.preprocessing.exif_transpose), loaded.preprocessing) for path in paths]
    return normalize(torch.stack(pixels), loaded.preprocessing)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """One auto run over four images (two per batch and per shard), and the library's result for them."""
    folder = tmp_path_factory.mktemp("auto")
    make_images(folder / "imgs", 4)
    summary = run(folder, batch_size=2, shard_size=2)
    output, rows = stored(folder)
    loaded = load_model(TINY, preprocessing=PREPROCESSING)
    expected = igcli.attribute(loaded.module, model_inputs(rows["image_paths"], loaded), method="ig", steps="auto",
                               tolerance=AUTO["step_tolerance"], min_steps=AUTO["min_steps"],
                               max_steps=AUTO["max_steps"], output="logit",
                               normalization=loaded.preprocessing.normalization)
    return folder, summary, output, rows, expected, loaded


def test_each_row_stores_what_its_map_cost_and_reached(clean):
    folder, summary, output, rows, expected, _ = clean
    assert summary.exit_code == 0 and summary.attributed == 4
    with h5py.File(list_shards(folder / "out")[0]) as handle:
        dtypes = {name: (handle[name].dtype, handle[name].shape[1:]) for name in COLUMNS}
    assert dtypes == {"gradient_evaluations": (np.int32, ()), "error_estimate": (np.float32, ()),
                      "tolerance_met": (np.uint8, ()), "step_points": (np.float64, (AUTO["max_steps"],))}
    evaluations = expected.evaluations.numpy()
    assert evaluations.min() > 4 and evaluations.max() <= AUTO["max_steps"]  # refined, within the cap
    np.testing.assert_array_equal(rows["gradient_evaluations"], evaluations)
    np.testing.assert_allclose(rows["error_estimate"], expected.error_estimate.numpy(), rtol=1e-4)
    np.testing.assert_array_equal(rows["tolerance_met"], expected.tolerance_met.numpy().astype(np.uint8))
    points = expected.step_points.numpy()
    np.testing.assert_array_equal(rows["step_points"][:, : points.shape[1]], points)
    assert np.isnan(rows["step_points"][:, points.shape[1]:]).all()
    # one point per gradient evaluation, sorted, in [0, 1]
    np.testing.assert_array_equal(np.isfinite(rows["step_points"]).sum(axis=1), rows["gradient_evaluations"])
    finite = rows["step_points"][np.isfinite(rows["step_points"])]
    assert ((finite >= 0) & (finite <= 1)).all()
    for row, count in zip(rows["step_points"], rows["gradient_evaluations"]):
        assert np.all(np.diff(row[:count]) > 0)
    np.testing.assert_allclose(rows["attributions"], expected.attributions.numpy(), rtol=1e-5, atol=1e-7)


def test_the_recipe_and_the_index_record_the_run(clean):
    folder, summary, output, rows, _, _ = clean
    recipe = output.recipe
    assert (recipe.steps, recipe.schedule, recipe.alphas) == (None, "auto", None)
    assert (recipe.step_tolerance, recipe.min_steps, recipe.max_steps) == (0.0013, 4, 30)
    assert Recipe.from_settings(recipe.as_settings()) == recipe
    assert "auto steps, T=0.0013" in method_title(recipe, 99.0)
    with h5py.File(folder / "out" / INDEX_NAME) as index:
        order = np.argsort([p.decode() for p in index["paths"][:]])
        for name in COLUMNS:
            np.testing.assert_array_equal(index[name][:][order], rows[name])
    spread = summary.gradient_evaluations
    values = rows["gradient_evaluations"]
    assert spread["count"] == 4 and spread["max"] == values.max() and spread["median"] == np.median(values)
    assert spread["mean"] == pytest.approx(values.mean()) and spread["tolerance_met"] == rows["tolerance_met"].mean()
    assert "gradient evaluations per map mean" in summary_line(summary)
    assert summary.relative_se is None and "gradient_evaluations" in summary.as_dict()


def test_evaluate_recomputes_exactly_the_stored_maps(clean):
    _, _, output, rows, _, loaded = clean
    recompute = output.recipe.attribution_function(loaded, torch.device("cpu"), batch_size=3)
    again = recompute(model_inputs(rows["image_paths"][:3], loaded), torch.as_tensor(rows["targets"][:3]),
                      list(rows["paths"][:3]))
    np.testing.assert_allclose(again.numpy(), rows["attributions"][:3], rtol=1e-5, atol=1e-7)


def test_a_resumed_run_equals_a_clean_one_and_refuses_another_tolerance(clean, tmp_path):
    folder, _, _, rows, _, _ = clean
    make_images(tmp_path / "imgs", 4)  # the same images (same seed), in a folder of this test's own
    run(tmp_path, out="single", batch_size=1, shard_size=1)
    sorted(list_shards(tmp_path / "single"))[-1].unlink()  # interrupted before the last image's shard was complete
    with pytest.raises(OutputError, match="step_tolerance"):
        run(tmp_path, out="single", batch_size=1, shard_size=1, resume=True, step_tolerance=0.01)
    with pytest.raises(OutputError, match="holds a run with steps='auto' but this run has steps=8"):
        run(tmp_path, out="single", batch_size=1, shard_size=1, resume=True, steps=8, step_tolerance=None,
            min_steps=None, max_steps=None)
    summary = run(tmp_path, out="single", batch_size=1, shard_size=1, resume=True)
    assert (summary.already_done, summary.attributed) == (3, 1)
    _, resumed = stored(tmp_path, "single")
    for name in ("gradient_evaluations", "tolerance_met", "step_points"):  # the same points: exactly
        np.testing.assert_array_equal(resumed[name], rows[name])
    np.testing.assert_allclose(resumed["error_estimate"], rows["error_estimate"], rtol=1e-4)
    np.testing.assert_allclose(resumed["attributions"], rows["attributions"], rtol=1e-5, atol=1e-7)


def test_a_damaged_or_foreign_column_is_caught(clean, tmp_path):
    import shutil

    shard = tmp_path / "shard.h5"
    shutil.copy(list_shards(clean[0] / "out")[0], shard)
    check_shard(shard)
    with h5py.File(shard, "r+") as handle:
        points = handle["step_points"][:, :8]
        del handle["step_points"]
        handle.create_dataset("step_points", data=points)  # another run's width
    with pytest.raises(DamagedShardError, match="'step_points' has 8 columns, not max_steps = 30"):
        check_shard(shard)
    with h5py.File(shard, "r+") as handle:
        del handle["step_points"]
    with pytest.raises(DamagedShardError, match="'step_points' is missing"):
        check_shard(shard)


@pytest.mark.parametrize(("settings", "message"), [
    (dict(schedule="gauss-legendre"), "--steps auto places its own points per image; drop --schedule"),
    (dict(method="gig"), "method gig cannot (its path follows the gradients)"),
    (dict(method="vg"), "method vg cannot (it has no path)"),
    (dict(method="eg"), "method eg cannot (it has no path)"),
    (dict(noise_samples=2), "--noise-samples makes an ensemble"),
    (dict(baseline=["black", "white"]), "several --baseline makes an ensemble"),
    (dict(baseline_dir="imgs", baseline_samples=2), "--baseline-dir makes an ensemble"),
    (dict(step_tolerance=1.0), "--tolerance must be a number between 0 and 1"),
    (dict(step_tolerance=float("nan")), "--tolerance must be a number between 0 and 1"),
    (dict(min_steps=0), "--min-steps must be an integer from 1 to 100000"),
    (dict(max_steps=8, min_steps=16), "--max-steps 8 is below the first partition's 17 gradient evaluations"),
    (dict(max_steps=8, min_steps=8), "--max-steps 8 is below the first partition's 9 gradient evaluations"),
    (dict(steps=8), "--tolerance applies to --steps auto only"),
    (dict(steps=None, step_tolerance=None, min_steps=None), "--max-steps applies to --steps auto only"),
    (dict(steps="many"), "--steps must be a positive integer or auto, got many"),
])
def test_steps_auto_is_refused_before_the_model_loads_naming_the_option(tmp_path, settings, message):
    job = AttributeJob(inputs=[str(tmp_path)], out=tmp_path / "out", model=TINY, **{**AUTO, **settings})
    with pytest.raises(InvalidArgumentError) as refused:
        check_attribute_job(job)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_split_refuses_steps_auto(tmp_path):
    import typer

    from igcli.cli.step_options import _steps_parser
    from igcli.jobs.split import SplitJob, run_split

    with pytest.raises(InvalidArgumentError, match="--steps auto is igcli attribute's"):
        run_split(SplitJob(inputs=[str(tmp_path)], out=tmp_path / "out", model=TINY, steps="auto"), quiet=True)
    with pytest.raises(typer.BadParameter, match="only in igcli attribute"):
        _steps_parser(False)("auto")
    assert (_steps_parser(True)("auto"), _steps_parser(True)("12")) == ("auto", 12)
    for text in ("0", "-3", "abc", "1.5"):
        with pytest.raises(typer.BadParameter, match="is not a positive integer or auto"):
            _steps_parser(True)(text)


def test_the_cli_refuses_tolerance_without_steps_auto_in_one_line(tmp_path):
    result = run_cli("attribute", str(tmp_path), "-o", str(tmp_path / "out"), "--model", TINY, "--tolerance", "0.1")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == ("igcli: error: --tolerance applies to --steps auto only; add --steps auto or "
                                     "drop --tolerance")

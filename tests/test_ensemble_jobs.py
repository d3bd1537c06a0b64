"""Ensembles through real jobs: what a run stores, ``evaluate``'s recompute rebuilds exactly (same draws, seeded
per image path); a map never depends on batching; ``--resume`` continues with the same draws and refuses a
changed ensemble or reference folder; the CLI refuses contradictory ensemble options in one line."""

import h5py
import numpy as np
import pytest
import torch

from igcli.errors import InvalidArgumentError
from igcli.jobs import AttributeJob, run_attribute
from igcli.models import load_model
from igcli.output import Output
from igcli.store import list_shards
from igcli.validate import OutputError

from cli_helpers import COMMON, TINY, TINY_ARGS, make_images, run_cli

PREPROCESSING = {"resize": 16, "crop": 16}

ENSEMBLES = {
    "smoothgrad-ig-idgi": dict(method="ig", rule="idgi", noise_samples=3, noise_aggregate="smoothgrad-sq"),
    "vargrad-gig": dict(method="gig", noise_samples=4, noise_aggregate="vargrad"),
    "smoothgrad-vg": dict(method="vg", noise_samples=3, noise_level=0.3),
    "smoothgrad-blurig": dict(method="blurig", noise_samples=2, method_options={"max_sigma": 4.0}),
    "black-white-uniform": dict(method="ig", baseline=["black", "white", "uniform"]),
    "references-with-noise": dict(method="ig", baseline_dir="refs", baseline_samples=2, noise_samples=2),
    "eg-references": dict(method="eg", baseline_dir="refs", method_options={"samples": 5}),
    "eg-uniform": dict(method="eg", baseline="uniform", method_options={"samples": 4}),
}


def run(tmp_path, out="out", **settings):
    settings = dict(settings)
    if settings.get("baseline_dir"):
        settings["baseline_dir"] = str(tmp_path / settings["baseline_dir"])
    job = AttributeJob(inputs=[str(tmp_path / "imgs")], out=tmp_path / out, model=TINY, device="cpu", steps=4,
                       preprocessing=PREPROCESSING, workers=0, **settings)
    return run_attribute(job, quiet=True)


def stored(tmp_path, out="out"):
    output = Output(tmp_path / out)
    rows = {}
    for chunk in output.iter_rows(["attributions", "paths", "image_paths", "draw_keys", "targets", "relative_se"]):
        for key, values in chunk.items():
            rows.setdefault(key, []).extend(values)
    order = np.argsort(rows["paths"])
    return output, {key: np.asarray(values)[order] for key, values in rows.items()}


@pytest.fixture
def folders(tmp_path):
    make_images(tmp_path / "imgs", 3)
    make_images(tmp_path / "refs", 4, seed=7, prefix="ref")
    return tmp_path


@pytest.mark.parametrize("name", sorted(ENSEMBLES))
def test_the_recipe_recomputes_exactly_the_stored_ensemble_maps(folders, name):
    assert run(folders, **ENSEMBLES[name]).exit_code == 0
    output, rows = stored(folders)
    recipe = output.recipe
    assert recipe.is_ensemble
    loaded = load_model(TINY, preprocessing=PREPROCESSING)
    recompute = recipe.attribution_function(loaded, torch.device("cpu"), batch_size=3)
    images = torch.stack([_model_input(path, loaded) for path in rows["image_paths"]])
    # Another batch order than the run's: the draws follow each image's path, not its place.
    order = [2, 0, 1]
    again = recompute(images[order], torch.as_tensor(rows["targets"][order]), list(rows["paths"][order]),
                      keys=list(rows["draw_keys"][order]))
    np.testing.assert_allclose(again.numpy(), rows["attributions"][order], rtol=1e-5, atol=1e-7)
    stochastic = name != "black-white-uniform"
    assert np.isfinite(rows["relative_se"]).all() == stochastic and (rows["relative_se"] > 0).all() == stochastic


def _model_input(path, loaded):
    from igcli.data import load_rgb, normalize, preprocess_pixels

    pixels = preprocess_pixels(load_rgb(path, exif_transpose=loaded.preprocessing.exif_transpose), loaded.preprocessing)
    return normalize(pixels[None], loaded.preprocessing)[0]


def test_maps_do_not_depend_on_batching_and_a_resumed_run_equals_a_clean_one(folders):
    settings = ENSEMBLES["references-with-noise"]
    run(folders, out="clean", batch_size=3, **settings)
    run(folders, out="single", batch_size=1, shard_size=1, **settings)
    shards = sorted(list_shards(folders / "single"))
    shards[-1].unlink()  # interrupted before the last image's shard was complete
    summary = run(folders, out="single", batch_size=1, shard_size=1, resume=True, **settings)
    assert (summary.already_done, summary.attributed) == (2, 1)
    _, clean = stored(folders, "clean")
    _, resumed = stored(folders, "single")
    np.testing.assert_array_equal(clean["paths"], resumed["paths"])
    np.testing.assert_allclose(resumed["attributions"], clean["attributions"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(resumed["relative_se"], clean["relative_se"], rtol=1e-5)


def test_the_spelling_of_the_inputs_changes_no_draw(folders, monkeypatch):
    # Draws are keyed by each image's path below the run's input root: imgs, ./imgs/, the absolute path, or the
    # same folder given from another working directory all give the same maps.
    settings = ENSEMBLES["references-with-noise"]
    run(folders, out="plain", **settings)
    monkeypatch.chdir(folders / "refs")
    for out, inputs in (("dotted", "../imgs/"), ("absolute", str(folders / "imgs"))):
        job = AttributeJob(inputs=[inputs], out=folders / out, model=TINY, device="cpu", steps=4,
                           preprocessing=PREPROCESSING, workers=0, **{**settings, "baseline_dir": str(folders / "refs")})
        run_attribute(job, quiet=True)
        np.testing.assert_array_equal(stored(folders, out)[1]["attributions"], stored(folders, "plain")[1]["attributions"])
        assert list(stored(folders, out)[1]["draw_keys"]) == ["img000.jpg", "img001.png", "img002.jpg"]


def test_another_seed_draws_other_maps(folders):
    run(folders, out="a", **ENSEMBLES["smoothgrad-vg"])
    run(folders, out="b", seed=1, **ENSEMBLES["smoothgrad-vg"])
    assert not np.allclose(stored(folders, "a")[1]["attributions"], stored(folders, "b")[1]["attributions"])


def test_resume_refuses_another_ensemble_and_a_changed_reference_folder(folders):
    settings = ENSEMBLES["eg-references"]
    run(folders, **settings)
    with pytest.raises(OutputError, match="noise_samples"):
        run(folders, resume=True, noise_samples=2, **settings)
    make_images(folders / "refs", 1, seed=9, prefix="zz")  # one reference more: other draws
    with pytest.raises(OutputError, match="baseline_dir_sha256"):
        run(folders, resume=True, **settings)
    # evaluate's recompute refuses it too: it could not make the same maps
    recipe = Output(folders / "out").recipe
    with pytest.raises(InvalidArgumentError, match="changed since the maps were made"):
        recipe.attribution_function(load_model(TINY, preprocessing=PREPROCESSING), torch.device("cpu"), 3)


def test_a_damaged_reference_stops_the_run_naming_it(folders):
    (folders / "refs" / "ref001.png").write_bytes(b"not a png")
    with pytest.raises(InvalidArgumentError, match=r"reference .*ref001\.png cannot be read"):
        run(folders, **ENSEMBLES["eg-references"])
    assert not list_shards(folders / "out")


def test_closed_path_is_refused_for_ensemble_maps(folders):
    run(folders, **ENSEMBLES["black-white-uniform"])
    result = run_cli("evaluate", "out", "--model", TINY, "--metric", "closed-path", cwd=folders)
    assert result.returncode == 2 and "are ensemble maps" in result.stderr, result.stderr


def test_references_replace_the_baseline_in_the_recipe(folders):
    run(folders, **ENSEMBLES["references-with-noise"])
    recipe = Output(folders / "out").recipe
    assert recipe.baseline is None and recipe.baseline_samples == 2
    assert recipe.baseline_dir == str(folders / "refs")


def test_plain_runs_store_no_error_bar(folders):
    run(folders, method="ig")
    with h5py.File(list_shards(folders / "out")[0]) as handle:
        assert "relative_se" not in handle and "noise_samples" not in handle.attrs


@pytest.mark.parametrize(("arguments", "message"), [
    (["--noise-level", "0.2"], "--noise-level needs --noise-samples"),
    (["--noise-aggregate", "vargrad"], "--noise-aggregate needs --noise-samples"),
    (["--baseline-samples", "2"], "--baseline-samples needs --baseline-dir"),
    (["--baseline-dir", "refs"], "--baseline-dir needs --baseline-samples"),
    (["--baseline-dir", "nowhere", "--baseline-samples", "2"], "--baseline-dir nowhere: no such folder"),
    (["--method", "vg", "--baseline", "black", "--baseline", "white"], "several --baseline: method vg takes no"),
    (["--method", "eg", "--rule", "idgi"], "rule idgi integrates along a path; eg has none"),
    (["--method", "eg", "--baseline", "black", "--baseline", "white"], "give one --baseline"),
    (["--method", "eg", "--baseline-dir", "refs", "--baseline-samples", "3"], "set how many with --samples"),
    (["--method", "ig", "--samples", "3"], "samples do not apply to method ig"),
    (["--noise-samples", "-1"], "--noise-samples"),
])
def test_contradictory_ensemble_options_are_refused_in_one_line(folders, arguments, message):
    result = run_cli("attribute", "imgs", "-o", "out", *COMMON, *arguments, cwd=folders)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (folders / "out").exists()


def test_the_summary_reports_the_spread_of_the_error_bars(folders):
    import json

    result = run_cli("attribute", "imgs", "-o", "out", *COMMON, "--method", "vg", "--noise-samples", "4", "--json",
                     cwd=folders)
    assert result.returncode == 0, result.stderr
    spread = json.loads(result.stdout)["relative_se"]
    _, rows = stored(folders)
    values = rows["relative_se"]
    assert spread["count"] == 3 and spread["max"] == pytest.approx(values.max(), rel=1e-5)
    assert spread["median"] == pytest.approx(np.median(values), rel=1e-5)
    plain = run_cli("attribute", "imgs", "-o", "plain", *COMMON, "--method", "vg", cwd=folders)
    assert "error bar" not in plain.stderr
    quiet_line = run_cli("attribute", "imgs", "-o", "again", *TINY_ARGS, "--steps", "4", "--workers", "0",
                         "--method", "vg", "--noise-samples", "4", cwd=folders)
    assert "error bar (relative SE of the maps) median" in quiet_line.stderr.strip().splitlines()[-1]

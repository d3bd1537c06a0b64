"""``igcli evaluate`` over shards: known answers on a model that only looks at one region."""

from __future__ import annotations

import csv
import os
import json

import numpy as np
import pytest
from PIL import Image

from cli_helpers import ROOT, TINY, TINY_ARGS, make_images, run_cli
from igcli.store import ShardWriter, build_index

REGION = str(ROOT / "tests" / "fixtures" / "tiny_model.py") + ":region"


def write_output(out, paths, maps, method, size=16, model=REGION):
    settings = {"method": method, "rule": "riemann", "model": model, "weights": None, "weights_sha256": None,
                "output": "prob", "preprocessing": {"resize": size, "crop": size, "mean": [0.485, 0.456, 0.406],
                                                    "std": [0.229, 0.224, 0.225], "interpolation": "bilinear"}}
    out.mkdir()
    writer = ShardWriter(out, 0, settings, shard_size=100)
    writer.write({"attributions": maps.astype(np.float32), "paths": [str(p) for p in paths],
                  "targets": np.zeros(len(paths), np.int64), "scores": np.ones(len(paths), np.float32),
                  "baseline_scores": np.zeros(len(paths), np.float32),
                  "completeness_gap": np.full(len(paths), 0.01, np.float32)})
    writer.close()
    build_index(out)


def test_evaluate_prefers_the_right_map_and_reports_unrankable_ones(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):  # bright images: the region votes for class 0
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(150, 256, (16, 16, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    region = np.zeros((16, 16), bool)
    region[:8, :8] = True
    masks = tmp_path / "masks"
    masks.mkdir()
    for path in paths:
        Image.fromarray(region.astype(np.uint8) * 255).save(masks / f"{path.stem}.png")
    exact = np.broadcast_to(region[None, None] + 1e-3 * rng.random((3, 3, 16, 16)), (3, 3, 16, 16)).copy()
    noise = rng.random((3, 3, 16, 16))
    noise[2] = 0.5  # a constant map: no ranking
    write_output(tmp_path / "exact", paths, exact, "ig")
    write_output(tmp_path / "noise", paths, noise, "gig")
    result = run_cli("evaluate", str(tmp_path / "exact"), str(tmp_path / "noise"), "--metric",
                     "insertion,deletion,abpc,localization,completeness", "--masks", str(masks), "--json", "--model", REGION,
                     "--csv",
                     str(tmp_path / "scores.csv"), "--quiet", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    exact_result, noise_result = json.loads(result.stdout)["results"]
    assert exact_result["rank"] == "signed" and exact_result["unrankable"] == 0 and noise_result["unrankable"] == 1
    a, b = exact_result["aggregate"], noise_result["aggregate"]
    assert a["insertion"]["mean"] > b["insertion"]["mean"] and a["deletion"]["mean"] < b["deletion"]["mean"]
    assert a["abpc"]["mean"] > b["abpc"]["mean"]
    assert a["roc_auc"]["mean"] == 1.0 and a["best_f1"]["mean"] == 1.0 and a["best_mae"]["mean"] == 0.0
    assert b["insertion"]["count"] == 2  # the constant map is counted as unrankable, not scored
    assert a["completeness_gap"]["mean"] == np.float32(0.01)
    for name in ("insertion", "insertion_ratio", "deletion", "deletion_ratio", "abpc", "roc_auc", "best_f1",
                 "best_mae"):  # the exact map is the better one: its value lies on the side marked better
        assert (a[name]["value"] > b[name]["value"]) == a[name]["higher_is_better"], name
    assert a["completeness_gap"]["higher_is_better"] is False
    with open(tmp_path / "scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and {r["method"] for r in rows} == {"ig", "gig"} and rows[0]["rank"] == "signed"
    table = run_cli("evaluate", str(tmp_path / "exact"), "--metric", "insertion,deletion", "--rank", "abs", "--quiet",
                    "--model", REGION, env={"COLUMNS": "200"})
    assert table.returncode == 0 and "insertion_ratio" in table.stdout and "rank: abs" in table.stdout
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in table.stdout.splitlines()
            if line.count("│") > 3}  # value name -> its "better" cell
    assert rows["insertion"] == rows["insertion_ratio"] == "↑ higher" and rows["deletion"] == "↓ lower"
    bad = run_cli("evaluate", str(tmp_path / "exact"), "--metric", "localization")
    assert bad.returncode == 2 and "--masks" in bad.stderr


def test_sic_aic_run_over_shards_and_count_what_they_cannot_score(tmp_path):
    size = 176  # MS-SSIM needs more than 160 pixels
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    paths = []
    for i in range(3):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        middle = slice(size // 2 - 8, size // 2 + 8)
        pixels[middle, middle] = 250 if i < 2 else 0  # the third image: the centre says class 1, the target is 0
        path = folder / f"img{i}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    maps = rng.random((3, 3, size, size))
    maps[:, :, size // 2 - 8 : size // 2 + 8, size // 2 - 8 : size // 2 + 8] += 2.0
    write_output(tmp_path / "out", paths, maps, "ig", size=size, model=REGION.replace(":region", ":center"))
    result = run_cli("evaluate", str(tmp_path / "out"), "--metric", "sic,aic,sic-msssim,aic-msssim", "--json",
                     "--quiet", "--device", "cpu", "--model", REGION.replace(":region", ":center"))
    assert result.returncode == 0, result.stderr
    (evaluated,) = json.loads(result.stdout)["results"]
    for name in ("sic", "aic", "sic-msssim", "aic-msssim"):
        entry = evaluated["aggregate"][name]
        assert entry["count"] + entry["unscorable"] == 3 and entry["unscorable"] >= 1, (name, entry)
        assert 0.0 <= entry["value"] <= 1.0
    third = evaluated["rows"][2]
    assert "sic_unscorable" in third and "at least as high" in third["sic_unscorable"]
    assert len(evaluated["curves"]["sic"]["y"]) == 101 and evaluated["curves"]["sic"]["y"][-1] == 1.0
    random_maps = rng.random((3, 3, size, size))
    write_output(tmp_path / "random", paths, random_maps, "gig", size=size, model=REGION.replace(":region", ":center"))
    # MS-SSIM levels from here on: the WebP encodes of the entropy levels were exercised above and are slow.
    again = run_cli("evaluate", str(tmp_path / "out"), str(tmp_path / "random"), "--metric", "sic-msssim", "--json",
                    "--quiet", "--device", "cpu", "--plot", str(tmp_path / "curves.png"),
                    "--model", REGION.replace(":region", ":center"))
    assert (tmp_path / "curves.png").stat().st_size > 1000
    exact_sic, random_sic = (r["aggregate"]["sic-msssim"]["value"] for r in json.loads(again.stdout)["results"])
    assert exact_sic > random_sic  # the map that covers the region the model reads wins
    assert json.loads(again.stdout)["results"][0]["aggregate"] == {"sic-msssim": evaluated["aggregate"]["sic-msssim"]}


def test_stability_metrics_recompute_with_the_run_settings(tmp_path):
    from igcli.jobs.evaluate import EvaluateJob, evaluate
    from igcli.jobs import AttributeJob, run_attribute

    make_images(tmp_path / "imgs", 3)
    model = REGION.replace(":region", ":linear")
    common = dict(inputs=[str(tmp_path / "imgs")], model=model, preprocessing={"resize": 16, "crop": 16},
                  device="cpu", workers=0, target="0", output="logit")
    run_attribute(AttributeJob(out=tmp_path / "vg", method="vg", **common), quiet=True)
    run_attribute(AttributeJob(out=tmp_path / "ig", method="ig", steps=4, **common), quiet=True)
    metrics = ["sensitivity", "jpeg-stability"]
    vg = evaluate(EvaluateJob(tmp_path / "vg", metrics, model=model, device="cpu"), quiet=True)
    # A linear model's gradient does not move at all: sensitivity 0 and a JPEG changes nothing.
    assert vg.aggregate["sensitivity"]["mean"] == 0.0
    assert vg.aggregate["jpeg_stability"]["mean"] > 600  # -ln of a clamped zero MSE
    ig = evaluate(EvaluateJob(tmp_path / "ig", metrics, model=model, device="cpu"), quiet=True)
    # IG = w * (x - x'): moving x by delta moves the map by w * delta, relative size about r / |x - x'|.
    assert 0.0 < ig.aggregate["sensitivity"]["mean"] < 0.2
    assert 0.0 < ig.aggregate["jpeg_stability"]["mean"] < 50
    again = evaluate(EvaluateJob(tmp_path / "ig", metrics, model=model, device="cpu", batch_size=1, overwrite=True),
                     quiet=True)
    assert again.aggregate["sensitivity"]["mean"] == pytest.approx(ig.aggregate["sensitivity"]["mean"], rel=1e-6)


def test_sensitivity_of_an_all_zero_map_is_unscorable_with_its_reason(tmp_path):
    # Region's logit 1 is a constant: its gradient, hence every vg map, is zero. Max-sensitivity divides by the
    # map's norm: 0/0 is no score (Captum reports 0, which would rank a blank map as perfectly stable).
    from igcli.jobs.evaluate import EvaluateJob, evaluate
    from igcli.jobs import AttributeJob, run_attribute
    from igcli.metrics.stability import ZERO_MAP

    make_images(tmp_path / "imgs", 3)
    run_attribute(AttributeJob(inputs=[str(tmp_path / "imgs")], out=tmp_path / "out", model=REGION, method="vg",
                               preprocessing={"resize": 16, "crop": 16}, device="cpu", workers=0, target="1",
                               output="logit"), quiet=True)
    result = evaluate(EvaluateJob(tmp_path / "out", ["sensitivity"], model=REGION, device="cpu"), quiet=True)
    assert result.aggregate["sensitivity"]["count"] == 0 and result.aggregate["sensitivity"]["unscorable"] == 3
    assert all(row["sensitivity_unscorable"] == ZERO_MAP and "sensitivity" not in row for row in result.rows)


def test_localization_from_boxes_csv_and_voc_xml(tmp_path):
    from igcli.metrics.ground_truth import GroundTruth
    from igcli.models import Preprocessing

    image = tmp_path / "cat.jpg"
    Image.new("RGB", (40, 20)).save(image)  # resized to 16 x 32 (short side 16), centre crop 16 x 16
    table = tmp_path / "boxes.csv"
    table.write_text(f"path,xmin,ymin,xmax,ymax\n{image},10,0,20,10\n{image},20,10,30,20\n")
    xml = tmp_path / "voc"
    xml.mkdir()
    (xml / "cat.xml").write_text(
        "<annotation><object><bndbox><xmin>10</xmin><ymin>0</ymin><xmax>20</xmax><ymax>10</ymax></bndbox></object>"
        "<object><bndbox><xmin>20</xmin><ymin>10</ymin><xmax>30</xmax><ymax>20</ymax></bndbox></object></annotation>"
    )
    preprocessing = Preprocessing(16, 16)
    from_csv = GroundTruth(None, str(table), preprocessing)(str(image))
    from_xml = GroundTruth(None, str(xml), preprocessing)(str(image))
    expected = np.zeros((16, 16), bool)  # original x 10-30 -> resized 8-24 -> cropped (offset 8) 0-16
    expected[:8, :8] = True
    expected[8:, 8:] = True
    np.testing.assert_array_equal(from_csv, expected)
    np.testing.assert_array_equal(from_xml, expected)
    with pytest.raises(FileNotFoundError, match="no row"):
        GroundTruth(None, str(table), preprocessing)(str(tmp_path / "dog.jpg"))


def test_closed_paths_vanish_for_a_linear_model_and_not_for_a_curved_one(tmp_path):
    from igcli.jobs.evaluate import EvaluateJob, evaluate
    from igcli.jobs import AttributeJob, run_attribute

    make_images(tmp_path / "imgs", 2)
    for name in ("linear", "tiny"):
        model = REGION.replace(":region", f":{name}")
        run_attribute(AttributeJob(inputs=[str(tmp_path / "imgs")], out=tmp_path / name, model=model,
                                   preprocessing={"resize": 16, "crop": 16}, device="cpu", workers=0, target="0",
                                   output="logit", method="ig", steps=8), quiet=True)
    linear = evaluate(EvaluateJob(tmp_path / "linear", ["closed-path"], model=REGION.replace(":region", ":linear"),
                                       device="cpu"), quiet=True)
    curved = evaluate(EvaluateJob(tmp_path / "tiny", ["closed-path"], model=REGION.replace(":region", ":tiny"),
                                       device="cpu"), quiet=True)
    # IG of a linear function is w * (end - start): the three segments cancel exactly.
    assert linear.aggregate["closed_path_mse"]["mean"] < 1e-12
    assert curved.aggregate["closed_path_mse"]["mean"] > 1e-9


def test_evaluate_runs_no_code_named_by_an_output_folder(tmp_path):
    """An output folder is data: a model spec in its settings that is a file.py factory or a pickle is refused."""
    marker = tmp_path / "payload-ran"
    payload = tmp_path / "payload.py"
    payload.write_text(f"open({str(marker)!r}, 'w').close()\ndef make():\n    raise SystemExit(9)\n")
    paths = make_images(tmp_path / "imgs", 2, size=16)
    for spec in (f"{payload}:make", str(payload)):
        out = tmp_path / f"out{len(spec)}"
        write_output(out, paths, np.ones((2, 3, 16, 16)), "ig", model=spec)
        result = run_cli("evaluate", str(out), "--metric", "insertion", "--device", "cpu", "--quiet")
        assert result.returncode == 4, result.stderr
        assert "named by the output folder" in result.stderr and "--model" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not marker.exists()
    # Metrics that need no model still work on such a folder.
    assert run_cli("evaluate", str(out), "--metric", "completeness", "--quiet").returncode == 0


def test_images_are_found_from_any_folder_and_under_root_after_they_moved(tmp_path):
    from igcli.errors import InvalidArgumentError
    from igcli.jobs.evaluate import EvaluateJob, evaluate
    from igcli.output import Output
    from igcli.render import render_output

    project = tmp_path / "scratch" / "proj"
    make_images(project / "data" / "imgs" / "cat", 3, size=16)
    made = run_cli("attribute", "data/imgs", "-o", "out", *TINY_ARGS, "--steps", "2", "--workers", "0", "--quiet",
                   cwd=project)
    assert made.returncode == 0, made.stderr
    out = project / "out"
    assert Output(out).column("paths")[0] == "data/imgs/cat/img000.jpg"  # as given, relative to the run's folder
    scoring = ("evaluate", str(out), "--metric", "insertion", "--model", TINY, "--device", "cpu", "--json", "--quiet")
    here = run_cli(*scoring)  # from the repository: data/imgs/... does not resolve here, the absolute paths do
    assert here.returncode == 0, here.stderr
    (before,) = json.loads(here.stdout)["results"]
    assert before["skipped"] == [] and len(before["rows"]) == 3

    moved = tmp_path / "project" / "images"  # scratch to project space, under another name
    moved.parent.mkdir()
    (project / "data" / "imgs").rename(moved)
    lost = evaluate(EvaluateJob(out, ["insertion"], model=TINY, device="cpu", overwrite=True), quiet=True)
    assert len(lost.skipped) == 3 and all("file not found" in s["reason"] and "--root DIR" in s["reason"]
                                          for s in lost.skipped)
    found = run_cli(*scoring, "--root", str(moved), "--resume")  # scores the images skipped, no others
    assert found.returncode == 0, found.stderr
    (after,) = json.loads(found.stdout)["results"]
    assert after["skipped"] == [] and after["rows"] == before["rows"]  # the same images, the same scores
    assert after["scored_now"] == 3

    missing = []
    render_output(out, tmp_path / "png", root=moved, on_missing_image=lambda *args: missing.append(args))
    widths = [Image.open(png).width for png in sorted((tmp_path / "png").iterdir())]
    assert missing == []
    assert len(widths) == 3 and all(width > 3 * 16 for width in widths)  # image | heatmap | overlay
    with pytest.raises(InvalidArgumentError, match="--root .*: no such folder"):
        Output(out, root=tmp_path / "nowhere")


def test_a_resumed_output_keeps_one_meaning_of_root(tmp_path, monkeypatch):
    """New shards added to an output follow its shards' input_root: none when they have none (written before
    it was recorded), else theirs, whatever this run's inputs; so one --root finds every image after a move."""
    import h5py

    from igcli.output import IMAGE_PATHS, Output
    from igcli.jobs import AttributeJob, run_attribute
    from igcli.store import list_shards

    project = tmp_path / "proj"
    make_images(project / "data" / "imgs" / "cat", 2, size=16)
    monkeypatch.chdir(project)
    common = dict(model=TINY, preprocessing={"resize": 16, "crop": 16}, device="cpu", workers=0, steps=2)
    for out in ("old", "new"):
        run_attribute(AttributeJob(inputs=["data/imgs"], out=project / out, **common), quiet=True)
    for shard in list_shards(project / "old"):  # as an igcli from before abs_paths and input_root wrote it
        with h5py.File(shard, "r+") as handle:
            del handle["abs_paths"], handle.attrs["input_root"], handle.attrs["abs_paths_sha256"]
    make_images(project / "data" / "imgs" / "cat", 2, size=16, seed=1, prefix="more")
    for out in ("old", "new"):  # resumed with the subfolder given: this run alone would record data/imgs/cat
        run_attribute(AttributeJob(inputs=["data/imgs/cat"], out=project / out, resume=True, **common), quiet=True)
    roots = {out: [h5py.File(s, "r").attrs.get("input_root") for s in list_shards(project / out)]
             for out in ("old", "new")}
    assert [len(r) for r in roots.values()] == [2, 2]
    assert roots["old"] == [None, None] and roots["new"] == [str(project / "data" / "imgs")] * 2

    moved = tmp_path / "elsewhere"
    project.rename(moved)
    monkeypatch.chdir(tmp_path)
    for out, root in (("old", moved), ("new", moved / "data" / "imgs")):  # --root: the run's folder, input_root
        found = [p for rows in Output(moved / out, root=root).iter_rows([IMAGE_PATHS]) for p in rows[IMAGE_PATHS]]
        assert len(found) == 4
        assert all(os.path.exists(p) for p in found), (out, found)


def test_recomputing_maps_for_a_metric_warns_about_nothing(tmp_path):
    """The run judged its maps' completeness once; evaluate's recomputed maps (sensitivity here, on the tiny
    model with few steps: large gaps) must not repeat that as raw Python warnings."""
    from igcli.jobs import AttributeJob, run_attribute

    make_images(tmp_path / "imgs", 2, size=16)
    run_attribute(AttributeJob(inputs=[str(tmp_path / "imgs")], out=tmp_path / "out", model=TINY, steps=4,
                               preprocessing={"resize": 16, "crop": 16}, device="cpu", workers=0), quiet=True)
    result = run_cli("evaluate", str(tmp_path / "out"), "--metric", "sensitivity", "--model", TINY,
                     "--device", "cpu", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "completeness" not in result.stderr.lower() and "Warning" not in result.stderr, result.stderr


def test_progress_counts_images_and_skips(tmp_path, capsys):
    """top2: two rows per image, the progress counts images; reloading fails for every image: all skipped."""
    from igcli.jobs.evaluate import EvaluateJob, evaluate
    from igcli.jobs import AttributeJob, run_attribute

    make_images(tmp_path / "imgs", 3, size=16)
    run_attribute(AttributeJob(inputs=[str(tmp_path / "imgs")], out=tmp_path / "out", model=TINY, steps=2,
                               target="top2", preprocessing={"resize": 16, "crop": 16}, device="cpu", workers=0),
                  quiet=True)
    job = EvaluateJob(tmp_path / "out", ["insertion"], model=TINY, device="cpu", batch_size=3)  # chunks split images
    assert len(evaluate(job).rows) == 6
    assert "igcli evaluate: 3/3 inputs (100.0%)" in capsys.readouterr().err

    (tmp_path / "imgs").rename(tmp_path / "gone")
    job.overwrite = True
    assert len(evaluate(job).skipped) == 3  # one entry per image, also for the one whose rows span two chunks
    err = capsys.readouterr().err
    assert "igcli evaluate: 3/3 inputs (100.0%)" in err and err.rstrip().endswith("3 skipped"), err


def test_a_missing_image_of_a_topk_run_is_one_skip_not_one_per_row(tmp_path):
    from igcli.jobs.evaluate import EvaluateJob, evaluate
    from igcli.jobs import AttributeJob, run_attribute

    paths = make_images(tmp_path / "imgs", 3)
    model = REGION.replace(":region", ":linear")
    run_attribute(AttributeJob(inputs=[str(tmp_path / "imgs")], out=tmp_path / "out", model=model, method="vg",
                               preprocessing={"resize": 16, "crop": 16}, device="cpu", workers=0, target="top2"),
                  quiet=True)
    paths[1].unlink()
    result = evaluate(EvaluateJob(tmp_path / "out", ["insertion"], model=model, device="cpu"), quiet=True)
    assert [entry["path"] for entry in result.skipped] == [str(paths[1])]
    assert result.aggregate["insertion"]["count"] == 4  # two rows for each image still there


def test_an_image_the_model_answers_with_nan_is_skipped_for_those_metrics_alone(tmp_path):
    """nan_on_bright is tiny with NaN logits for bright inputs: the white image's model-scored metrics are dropped
    with a reason (exit code 5), its localization stays, and its batch-mates keep exactly tiny's values."""
    paths = make_images(tmp_path / "imgs", 2, size=16)
    white = tmp_path / "imgs" / "white.png"
    Image.new("RGB", (16, 16), (255, 255, 255)).save(white)
    paths.append(white)
    region = np.zeros((16, 16), np.uint8)
    region[:8, :8] = 255
    (tmp_path / "masks").mkdir()
    for path in paths:
        Image.fromarray(region).save(tmp_path / "masks" / f"{path.stem}.png")
    maps = np.random.default_rng(2).random((3, 3, 16, 16))
    nan_model = TINY.replace(":tiny", ":nan_on_bright")
    write_output(tmp_path / "out", paths, maps, "ig", model=nan_model)
    args = ["evaluate", str(tmp_path / "out"), "--metric", "insertion,deletion,abpc,sic,aic,localization", "--json",
            "--masks", str(tmp_path / "masks"), "--device", "cpu", "--batch-size", "2"]
    result = run_cli(*args, "--model", nan_model)
    assert result.returncode == 5, result.stderr
    (evaluated,) = json.loads(result.stdout)["results"]
    assert evaluated["skipped"] == [{"path": str(white), "reason": "insertion, deletion, abpc, sic, aic: NaN or "
                                     "infinity in the model's outputs for this image or a perturbed copy of it"}]
    assert "skipped" in result.stderr and "white.png: insertion, deletion, abpc, sic, aic: NaN" in result.stderr
    rows = evaluated["rows"]
    assert not {"insertion", "deletion_ratio", "abpc", "sic", "aic"} & set(rows[2]) and rows[2]["roc_auc"] >= 0
    from igcli.jobs.evaluate import EvaluateJob, evaluate

    clean = evaluate(EvaluateJob(tmp_path / "out", ["insertion", "deletion", "abpc"], model=TINY, device="cpu",
                                 batch_size=2), quiet=True)
    for name in ("insertion", "insertion_ratio", "deletion", "deletion_ratio", "abpc"):
        assert [row[name] for row in rows[:2]] == [row[name] for row in clean.rows[:2]], name
        assert evaluated["aggregate"][name]["count"] == 2
    assert np.isfinite(evaluated["curves"]["insertion"]["y"]).all()  # the NaN curve is not in the mean


def test_min_pred_reaches_sic_and_aic_from_the_command_line(tmp_path):
    make_images(tmp_path / "imgs", 2)
    made = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(tmp_path / "out"), *TINY_ARGS, "--steps", "2",
                   "--workers", "0", "--quiet")
    assert made.returncode == 0, made.stderr
    result = run_cli("evaluate", str(tmp_path / "out"), "--metric", "sic,aic", "--min-pred", "1", "--model", TINY,
                     "--device", "cpu", "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    evaluated = json.loads(result.stdout)["results"][0]
    assert evaluated["min_pred"] == 1.0 and evaluated["aggregate"]["sic"]["unscorable"] == 2
    assert all("below --min-pred 1" in row["sic_unscorable"] for row in evaluated["rows"])

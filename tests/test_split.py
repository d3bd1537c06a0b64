"""Split IG against analytic ground truth: alpha*, the completeness of Left and Right, the statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cli_helpers import TINY, TINY_ARGS, run_cli
from conftest import tiny_convnet
from fixtures.analytic import TanhRidge
from igcli.split import parse_psis, split
from igcli.jobs.split import summarize_split


@pytest.fixture
def ridge():
    x = torch.rand((2, 3, 6, 6), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    model = TanhRidge(a=1.0)
    with torch.no_grad():
        model.w.abs_()  # x >= 0 and w >= 0: w.x > 0, so f rises along the path from 0 for both images
    total = model.total(x[:1])
    model.a, model.c = 6.0 / abs(total), 0.3 * total  # f rises steeply near alpha = 0.3
    return model, x


def test_alpha_star_is_refined_within_the_tolerance(ridge):
    model, x = ridge
    result = split(model, x, 0, psis=[0.5, 0.9, 0.99], steps=16, output="logit", tolerance=1e-6, device="cpu",
                   batch_size=64)
    for i in range(2):
        for j, psi in enumerate(result.psis):
            exact = model.exact_alpha_star(x[i : i + 1], psi)
            assert 0 < exact < 1
            assert result.alpha_star[i, j] == pytest.approx(exact, abs=1e-6)
    assert result.found.all()
    assert np.all(np.diff(result.alpha_star, axis=1) > 0)  # larger psi, later saturation


def test_left_plus_right_is_full_and_sums_follow_psi(ridge):
    model, x = ridge
    psis = [0.9, 0.95]
    riemann = split(model, x, 0, psis=psis, steps=256, schedule="midpoint", output="logit", device="cpu",
                    batch_size=512)
    change = (riemann.scores - riemann.baseline_scores).double()
    for j, psi in enumerate(psis):
        left = riemann.left[:, j].flatten(1).sum(1)
        right = riemann.right[:, j].flatten(1).sum(1)
        # Quadrature error of 256-point midpoint sums on these smooth paths: well under 1e-3 of the change.
        np.testing.assert_allclose(left, psi * change, rtol=1e-3)
        np.testing.assert_allclose(right, (1 - psi) * change, rtol=1e-2, atol=1e-3 * float(change.abs().max()))
        np.testing.assert_allclose((riemann.left[:, j] + riemann.right[:, j]).numpy(), riemann.full.numpy(),
                                   rtol=2e-3, atol=1e-5 * float(riemann.full.abs().max()))

    idgi = split(model, x, 0, psis=psis, steps=8, rule="idgi", output="logit", tolerance=1e-12, device="cpu")
    with torch.no_grad():  # in float64 (the result's scores are float32, like igcli.attribute's)
        change = model(x)[:, 0] - model(torch.zeros_like(x))[:, 0]
    for j, psi in enumerate(psis):
        # Exact on every path with IDGI; f(x*) hits the threshold to the bisection's 1e-12.
        np.testing.assert_allclose(idgi.left[:, j].flatten(1).sum(1), psi * change, rtol=1e-9)
        np.testing.assert_allclose(idgi.right[:, j].flatten(1).sum(1), (1 - psi) * change, rtol=1e-8)
    assert np.all(idgi.threshold_error < 1e-9)


def test_curves_statistics_and_images_that_never_rise():
    model = tiny_convnet().double()
    images = torch.rand((3, 3, 8, 8), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    logits = model(images)
    target = int(logits[0].argmax())
    result = split(model, images, target, psis="0.9,0.95", steps=8, output="logit", device="cpu")
    assert result.curve_scores.shape == (3, 8) and result.curve_gradient_norms.shape == (3, 8)
    np.testing.assert_allclose(result.curve_alphas, np.arange(1, 9) / 8)
    np.testing.assert_allclose(result.curve_scores[:, -1], result.scores.numpy(), rtol=1e-6)  # right sum ends at x
    rises = (result.scores > result.baseline_scores).numpy()
    assert np.array_equal(result.found[:, 0], rises)
    for i in np.flatnonzero(~rises):  # reported per image, not a crash
        assert np.isnan(result.alpha_star[i]).all() and torch.isnan(result.left[i]).all()
    for i in np.flatnonzero(rises):
        left, right, full = (t.flatten().numpy() for t in (result.left[i, 0], result.right[i, 0], result.full[i]))
        assert result.statistics["ratio_l1"][i, 0] == pytest.approx(np.abs(right).sum() / np.abs(left).sum())
        assert result.statistics["ratio_l2"][i, 0] == pytest.approx(np.linalg.norm(right) / np.linalg.norm(left))
        cosine = left @ full / (np.linalg.norm(left) * np.linalg.norm(full))
        assert result.statistics["cos_left_full"][i, 0] == pytest.approx(cosine)


def test_psi_values_are_checked():
    assert parse_psis("0.95,0.9,0.9").tolist() == [0.9, 0.95]
    for bad in ("1.0", "0", "x", []):
        with pytest.raises(ValueError, match="psi"):
            parse_psis(bad)


def test_a_split_run_whose_every_input_is_skipped_exits_5_and_resumes(tmp_path):
    """No rows at all (each image skipped) is an output like any other: exit 5 with the skip counted, a zero-row
    summary, and --resume finds nothing left to do (exit 0), instead of 'statistics malformed' for ever."""
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (20, 20), (255, 255, 255)).save(tmp_path / "imgs" / "white.png")  # NaN in nan_on_bright
    (tmp_path / "imgs" / "broken.png").write_bytes(b"not an image")
    args = ["split", str(tmp_path / "imgs"), "-o", str(tmp_path / "out"), *TINY_ARGS, "--model",
            TINY.replace(":tiny", ":nan_on_bright"), "--steps", "4", "--workers", "0", "--psi", "0.5,0.9"]
    result = run_cli(*args, "--json")
    assert result.returncode == 5, result.stderr
    summary = json.loads(result.stdout)
    assert summary["exit_code"] == 5 and summary["rows"] == 0 and len(summary["skipped"]) == 2
    assert summary["statistics"] == {"psis": [0.5, 0.9], "images": 0, "found": [0, 0], "means": {}, "medians": {}}
    assert "2 skipped" in result.stderr.splitlines()[-1]  # the progress line counts the NaN skip too
    assert summarize_split(tmp_path / "out").images == 0
    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "Split IG over 0 images" in resumed.stdout

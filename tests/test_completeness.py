"""Completeness warnings (Sundararajan et al. 2017 §3: attributions should sum to f(x) - f(x') within 5%): once
per run or library call, with the count, and maps that explain no change named apart."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest
import torch
from torch import nn

import igcli
from cli_helpers import TINY, TINY_ARGS, make_images, run_cli
from igcli.completeness import CompletenessWarning, GapTally
from igcli.models import load_model


def test_the_tally_counts_large_gaps_over_the_median_and_constant_maps_apart():
    tally = GapTally()
    tally.add(np.array([0.01, 0.2, np.nan], np.float32))
    tally.add(np.array([0.3, 1.0], np.float32))  # 1.0 exactly: an all-zero map
    gap_line, constant_line = tally.messages()
    assert gap_line.startswith("warning: completeness gap above 5% for 2 of 3 maps (median 20.0%)")
    assert "--steps" in gap_line and "gauss-legendre" in gap_line and "igcli calibrate" in gap_line
    assert constant_line.startswith("warning: 2 of 5 maps explain no change")

    fine = GapTally()
    fine.add(np.array([0.01, 0.2, 0.04, 0.03], np.float32))  # median 3.5%: one large gap is no reason to warn
    assert fine.messages() == []


def test_the_advice_suggests_nothing_the_run_already_does():
    tally = GapTally()
    tally.add(np.array([0.3, 0.4, np.nan], np.float32))

    def advice(**settings):
        gap_line, constant_line = tally.messages(**settings)
        return gap_line.split("too coarse; ")[1], constant_line.split("will not help, ")[1]

    assert advice() == ("use more --steps, --schedule gauss-legendre, or igcli calibrate and --schedule auto",
                        "try --output logit or another baseline")
    gap, constant = advice(output="logit", schedule="gauss-legendre")
    assert gap == "use more --steps, or igcli calibrate and --schedule auto" and constant == "try another baseline"
    gap, _ = advice(schedule="calibrated")  # --schedule auto or a schedule file: calibrated for one step count
    assert gap == "use more --steps (igcli calibrate for that count first), or --schedule gauss-legendre"
    gap, constant = advice(cli=False, schedule="custom")  # the library, given alphas
    assert gap == "use more steps, or schedule='gauss-legendre'" and constant == "try the logit output or another baseline"


def test_the_cli_advice_follows_the_run_s_output(tmp_path):
    make_images(tmp_path / "imgs", 2)
    result = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(tmp_path / "out"), *TINY_ARGS, "-j", "0",
                     "--steps", "1", "--output", "logit", "--schedule", "gauss-legendre", "--quiet")
    assert result.returncode == 0, result.stderr
    (warned,) = [line for line in result.stderr.splitlines() if "completeness" in line]
    assert warned.endswith("too coarse; use more --steps, or igcli calibrate and --schedule auto"), warned


@pytest.fixture(scope="module")
def tiny_and_images():
    return load_model(TINY).module, torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def test_the_library_warns_once_per_call_with_the_count(tiny_and_images):
    model, images = tiny_and_images
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = igcli.attribute(model, images, steps=32, schedule="right")
    large = int((result.completeness_gap > 0.05).sum())
    assert 0 < large < 4  # this model and these images: some maps off by more than 5%, not all
    assert [w.category for w in caught] == [CompletenessWarning]
    assert f"completeness gap above 5% for {large} of 4 maps" in str(caught[0].message)


def test_no_warning_when_the_integral_is_fine_or_the_check_is_off(tiny_and_images):
    model, images = tiny_and_images
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fine = igcli.attribute(model, images, steps=8, schedule="gauss-legendre")
        igcli.attribute(model, images, steps=1, check_completeness=False)
        igcli.attribute(model, images, method="vg")  # no path: no completeness to check
    assert float(fine.completeness_gap.max()) < 0.05


class Constant(nn.Module):
    """Logits that do not depend on the input: f(x) = f(x'), the gap is undefined and the maps are zero."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([1.0, 0.0]).expand(x.shape[0], 2) + 0 * x.flatten(1)[:, :2]


def test_a_constant_output_is_named_apart(tiny_and_images):
    _, images = tiny_and_images
    with pytest.warns(CompletenessWarning) as caught:
        igcli.attribute(Constant(), images, steps=4)
    assert len(caught) == 1 and str(caught[0].message).startswith("4 of 4 maps explain no change")


def stored_gaps(out) -> np.ndarray:
    with h5py.File(out / "index.h5", "r") as index:
        return index["completeness_gap"][:]


def test_the_cli_warns_once_per_run_with_the_count(tmp_path):
    make_images(tmp_path / "imgs", 5)
    common = ["attribute", str(tmp_path / "imgs"), *TINY_ARGS, "-j", "0", "-b", "2", "--quiet"]
    coarse = run_cli(*common, "-o", str(tmp_path / "coarse"), "--steps", "1")
    assert coarse.returncode == 0, coarse.stderr
    gaps = stored_gaps(tmp_path / "coarse")
    warned = [line for line in coarse.stderr.splitlines() if "completeness" in line]
    assert len(warned) == 1, coarse.stderr  # three batches, one warning
    assert warned[0].startswith(f"warning: completeness gap above 5% for {int((gaps > 0.05).sum())} of 5 maps")

    fine = run_cli(*common, "-o", str(tmp_path / "fine"), "--steps", "16", "--schedule", "gauss-legendre")
    assert fine.returncode == 0, fine.stderr
    assert stored_gaps(tmp_path / "fine").max() < 0.05 and "completeness" not in fine.stderr

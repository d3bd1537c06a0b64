"""What the CLI says and where: data alone on stdout (strict JSON with --json, nothing when a command fails),
refusals before the model loads, and a summary whose figures agree with each other."""

from __future__ import annotations

import json
import re

import pytest

from cli_helpers import TINY_ARGS, make_images, one_line, run_cli

# A model spec whose loading would fail with exit 4 (no cached weights, no network), after seconds of
# importing torchvision: a refusal that exits with another code must have come before loading.
UNLOADABLE = ["--model", "resnet18", "--device", "cpu"]


def offline_env(tmp_path) -> dict:
    """An empty torch hub cache, and a proxy on a closed port so a download fails at once even when online."""
    proxy = "http://127.0.0.1:9"
    return {"TORCH_HOME": str(tmp_path / "torch-home"), "HTTPS_PROXY": proxy, "https_proxy": proxy,
            "HTTP_PROXY": proxy, "http_proxy": proxy, "NO_PROXY": "", "no_proxy": ""}


def strict_json(text: str):
    """``text`` as exactly one JSON document, refusing NaN and infinities (as jq and most parsers do)."""

    def refuse(constant: str):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


NOISY_MODEL = '''
import os, sys
sys.path.insert(0, {fixtures!r})
from tiny_model import tiny as _tiny
import torch

class Noisy(torch.nn.Module):
    """tiny, printing on stdout at every forward pass, from Python and at the file-descriptor level."""
    def __init__(self):
        super().__init__()
        self.inner = _tiny()
    def forward(self, x):
        print("forward pass")
        os.write(1, b"fd-level text\\n")
        return self.inner(x)

def noisy():
    print("building the model")
    return Noisy().eval()
'''


@pytest.fixture()
def noisy_model(tmp_path):
    from cli_helpers import ROOT

    path = tmp_path / "noisy_model.py"
    path.write_text(NOISY_MODEL.format(fixtures=str(ROOT / "tests" / "fixtures")))
    return f"{path}:noisy"


def test_json_stdout_holds_only_the_summary_whatever_the_model_prints(tmp_path, noisy_model):
    make_images(tmp_path / "imgs", 2)
    model = ["--model", noisy_model, "--resize", "16", "--crop", "16", "--device", "cpu", "-j", "0", "--quiet"]
    attributed = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(tmp_path / "out"), *model, "--steps", "2",
                         "--json")
    assert attributed.returncode == 0, attributed.stderr
    assert strict_json(attributed.stdout)["attributed"] == 2
    assert "building the model" in attributed.stderr and "fd-level text" in attributed.stderr

    evaluated = run_cli("evaluate", str(tmp_path / "out"), "--metric", "insertion,completeness", "--model",
                        noisy_model, "--device", "cpu", "--quiet", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert set(strict_json(evaluated.stdout)["results"][0]["aggregate"]) >= {"insertion", "completeness_gap"}
    assert "forward pass" in evaluated.stderr

    split = run_cli("split", str(tmp_path / "imgs"), "-o", str(tmp_path / "split"), *model, "--steps", "2",
                    "--json")
    assert split.returncode == 0, split.stderr
    assert strict_json(split.stdout)["statistics"]["images"] == 2

    calibrated = run_cli("calibrate", str(tmp_path / "imgs"), *model, "--steps", "2", "--probe-steps", "4",
                         "-o", str(tmp_path / "schedule.json"), "--json")
    assert calibrated.returncode == 0, calibrated.stderr
    assert strict_json(calibrated.stdout)["steps"] == 2


def test_a_failed_download_leaves_stdout_empty_and_says_one_line(tmp_path):
    make_images(tmp_path / "imgs", 1)
    result = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(tmp_path / "out"), *UNLOADABLE, "--json",
                     env=offline_env(tmp_path))
    assert result.returncode == 4
    assert result.stdout == ""  # not torch hub's 'Downloading: ...', and no JSON: the command failed
    line = one_line(result.stderr)
    assert line.startswith("igcli: error: --model resnet18: could not get its weights") and "--weights" in line
    assert not (tmp_path / "out").exists()  # nothing made for a run that never started


@pytest.mark.parametrize("extra, code, fragment", [
    (["--method", "vg", "--rule", "idgi"], 2, "rule idgi integrates along a path"),
    (["--resume", "--overwrite"], 2, "--resume and --overwrite contradict"),
    (["--shard", "3/2"], 2, "--shard 3/2"),
    (["--schedule", "missing.json"], 2, "--schedule missing.json"),
    (["--target", "label", "--labels", "LABELS"], 2, "line 2 needs two columns"),
    (["--labels", "LABELS"], 2, "--labels is only used with --target label"),
    (["--baseline", "missing.npy"], 2, "--baseline missing.npy"),
    (["--fraction", "0.5"], 2, "do not apply to method ig"),
    (["MISSING"], 2, "no such file or folder"),
    (["-o", "FULL"], 6, "folder is not empty"),
])
def test_refusals_come_before_the_model_is_loaded(tmp_path, extra, code, fragment):
    make_images(tmp_path / "imgs", 1)
    (tmp_path / "labels.csv").write_text("a.jpg,0\nonly-one-column\n")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("someone else's file\n")
    names = {"LABELS": str(tmp_path / "labels.csv"), "MISSING": str(tmp_path / "missing"),
             "FULL": str(tmp_path / "full")}
    extra = [names.get(arg, arg) for arg in extra]
    result = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(tmp_path / "out"), *UNLOADABLE, "--json",
                     *extra, env=offline_env(tmp_path))
    assert result.returncode == code, result.stderr  # exit 4 would mean the model was loaded first
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert line.startswith("igcli: error: ") and fragment in line
    assert not (tmp_path / "out").exists()


def test_the_summary_says_what_each_time_and_rate_measure(tmp_path):
    make_images(tmp_path / "imgs", 3)
    common = ["attribute", str(tmp_path / "imgs"), *TINY_ARGS, "--steps", "2", "-j", "0"]
    result = run_cli(*common, "-o", str(tmp_path / "a"), "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    summary = strict_json(result.stdout)
    assert summary["seconds"] >= summary["load_seconds"] + summary["attribution_seconds"] - 0.002
    assert summary["images_per_second"] == pytest.approx(3 / summary["attribution_seconds"], rel=1e-2)

    result = run_cli(*common, "-o", str(tmp_path / "b"))
    assert result.returncode == 0, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    match = re.fullmatch(r"3 images attributed \(3 rows\) in ([\d.]+) s: model load ([\d.]+) s, attribution "
                         r"([\d.]+) s at ([\d.]+) images/s; 0 already done, 0 skipped -> .*", line)
    assert match, line
    total, load, attribution, rate = map(float, match.groups())
    assert total >= load + attribution - 0.1
    assert rate == pytest.approx(3 / attribution, rel=0.05, abs=0.01)  # the rate belongs to the time beside it

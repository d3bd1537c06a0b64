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
    (["--schedule", "./missing.json"], 2, "--schedule ./missing.json: no such file"),  # quoted as typed
    (["--target", "label", "--labels", "LABELS"], 2, "line 2 needs two columns"),
    (["--labels", "LABELS"], 2, "--labels is only used with --target label"),
    (["--baseline", "missing.npy"], 2, "--baseline missing.npy"),
    (["--fraction", "0.5"], 2, "do not apply to method ig"),
    # Method names are the registry's, in any case; a near miss is named.
    (["--method", "IDGI", "--baseline", "missing.npy"], 2, "--baseline missing.npy"),
    (["--method", "blurg"], 2, "'blurg' is not one of 'vg', 'ig', 'blurig', 'gig', 'eg', 'idgi'; did you mean blurig?"),
    # Infinity is "> 0" but makes no blur: refused as an option value, not a traceback after the model loads.
    (["--method", "blurig", "--max-sigma", "inf"], 2, "max_sigma must be a finite number > 0"),
    (["--method", "blurig", "--option", "max_sigma=1e400"], 2, "max_sigma must be a finite number > 0"),
    (["--baseline", "blur", "--option", "baseline_sigma=inf"], 2, "baseline_sigma must be a finite number > 0"),
    # K anchors need K + 1 steps: fewer stopped the walk short of the input; a huge K planned for ever.
    (["--method", "gig", "--steps", "4", "--anchors", "4"], 2, "anchors 4 cut the path into 5 segments"),
    (["--method", "gig", "--option", "anchors=99999999999999999999"], 2, "use fewer anchors or more steps"),
    (["MISSING"], 2, "no such file or folder"),
    (["-o", "FULL"], 6, "folder is not empty"),
    # Preprocessing options are option errors (2), not a model that failed to load (4).
    (["--crop", "0"], 2, "--crop 0: must be a whole number of pixels"),
    (["--resize", "0"], 2, "--resize 0: must be a whole number of pixels"),
    (["--mean", "1,2"], 2, "--mean 1,2: give 3 values"),
    (["--std", "0,1,1"], 2, "--std 0,1,1: every value must be at least 1e-06"),
    (["--std", "1e-320,1,1"], 2, "every value must be at least 1e-06"),  # a denormal: inputs would be inf
    (["--resize", "99999999"], 2, "--resize 99999999: must be a whole number of pixels, 1 to 65536"),
    (["--mean", "nan,0,0"], 2, "--mean nan,0,0: NaN or infinity"),
    (["--std", "inf,1,1"], 2, "--std inf,1,1: NaN or infinity"),
    # A baseline file is read, not only found.
    (["--baseline", "JUNK.npy"], 2, "not a .npy array file"),
    (["--baseline", "NAN.npy"], 2, "contains NaN or infinity"),
    (["--baseline", "SMALL.npy", "--crop", "8"], 2, "shape (3, 4, 4), expected (3, 8, 8)"),
    (["--baseline", "JUNK.pt"], 2, "not a tensor file written by torch.save"),
    (["--baseline", "JUNK.png"], 2, "not an image file"),
    # A named model has ImageNet's 1000 classes: labels 1..1000 are 1-based, known without loading it.
    (["--target", "label", "--labels", "ONE_BASED"], 2, "look 1-based"),
    (["--target", "label", "--labels", "/dev/null"], 2, "not a regular file"),
    (["--target", "label", "--labels", "FIFO"], 2, "not a regular file"),  # not read: that would block
])
def test_refusals_come_before_the_model_is_loaded(tmp_path, extra, code, fragment):
    make_images(tmp_path / "imgs", 1)
    (tmp_path / "labels.csv").write_text("a.jpg,0\nonly-one-column\n")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("someone else's file\n")
    names = {"LABELS": str(tmp_path / "labels.csv"), "MISSING": str(tmp_path / "missing"),
             "FULL": str(tmp_path / "full"), **bad_files(tmp_path)}
    extra = [names.get(arg, arg) for arg in extra]
    result = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(tmp_path / "out"), *UNLOADABLE, "--json",
                     *extra, env=offline_env(tmp_path))
    assert result.returncode == code, result.stderr  # exit 4 would mean the model was loaded first
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert line.startswith("igcli: error: ") and fragment in line
    assert not (tmp_path / "out").exists()


def bad_files(folder) -> dict[str, str]:
    """Files that look like a baseline or labels by name and are not good ones, by placeholder."""
    import os

    import numpy as np

    files = {"JUNK.npy": b"junk\n", "JUNK.pt": b"junk\n", "JUNK.png": b"junk\n",
             "ONE_BASED": "".join(f"{i}\n" for i in range(1, 1001)).encode()}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    np.save(folder / "NAN.npy", np.full((3, 16, 16), np.nan, np.float32))
    np.save(folder / "SMALL.npy", np.zeros((3, 4, 4), np.float32))
    os.mkfifo(folder / "FIFO")
    return {name: str(folder / name) for name in [*files, "NAN.npy", "SMALL.npy", "FIFO"]}


@pytest.mark.parametrize("command", [["split", "-o", "OUT"], ["calibrate"]])
@pytest.mark.parametrize("extra, fragment", [
    (["--crop", "0"], "--crop 0"),
    (["--std", "1,nan,1"], "--std 1,nan,1: NaN or infinity"),
    (["--baseline", "JUNK.npy"], "not a .npy array file"),
])
def test_split_and_calibrate_refuse_bad_values_before_the_model_too(tmp_path, command, extra, fragment):
    make_images(tmp_path / "imgs", 1)
    names = {"OUT": str(tmp_path / "out"), **bad_files(tmp_path)}
    args = [names.get(arg, arg) for arg in [command[0], str(tmp_path / "imgs"), *command[1:], *extra]]
    result = run_cli(*args, *UNLOADABLE, "--json", env=offline_env(tmp_path))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert one_line(result.stderr).startswith("igcli: error: ") and fragment in result.stderr


def test_names_win_over_files_called_the_same(tmp_path):
    """Files named right (--schedule's default), black (--baseline's) and resnet18 in the current folder change
    nothing: the names mean what they always do; ./right is the file."""
    make_images(tmp_path / "imgs", 1)
    for name in ("right", "black", "resnet18"):
        (tmp_path / name).write_text("not a schedule, image or model\n")
    common = ["attribute", str(tmp_path / "imgs"), *TINY_ARGS, "--steps", "2", "-j", "0", "--quiet"]
    for method in ("ig", "vg"):
        result = run_cli(*common, "-o", str(tmp_path / f"out-{method}"), "--method", method, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    result = run_cli(*common, "-o", str(tmp_path / "file"), "--schedule", "./right", cwd=tmp_path)
    assert result.returncode == 2 and "not a readable JSON schedule file" in one_line(result.stderr)
    result = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(tmp_path / "named"), *UNLOADABLE, cwd=tmp_path,
                     env=offline_env(tmp_path))
    assert result.returncode == 4 and "--model resnet18: could not get its weights" in one_line(result.stderr)


@pytest.mark.parametrize("args, fragment", [
    (["attribute", "IMGS", "-o", "OUT", "--bogus"], "No such option: --bogus"),
    (["attribute", "IMGS", "-o", "OUT", "--method", "sg"], "Invalid value for '--method'"),
    (["attribute", "-o", "OUT"], "Missing argument 'IMAGES...'"),
    (["attribute", "IMGS", "-o", "OUT", "--steps", "abc"], "Invalid value for '--steps'"),
    (["attribute", "IMGS", "-o", "OUT", "--steps"], "Option '--steps' requires an argument"),
    (["split", "IMGS", "-o", "OUT", "--psi"], "Option '--psi' requires an argument"),
    (["evaluate"], "Missing argument 'OUT...'"),
    (["frobnicate"], "No such command 'frobnicate'"),
])
def test_usage_errors_are_one_line_and_exit_2(tmp_path, args, fragment):
    names = {"IMGS": str(tmp_path), "OUT": str(tmp_path / "out")}
    result = run_cli(*[names.get(arg, arg) for arg in args])
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    line = one_line(result.stderr)
    command = "igcli" if args[0] == "frobnicate" else f"igcli {args[0]}"
    assert line.startswith("igcli: error: ") and fragment in line and line.endswith(f"; see {command} --help")


@pytest.mark.parametrize("args", [[], ["--help"], ["attribute", "--help"]])
def test_help_without_arguments_or_with_help_exits_0(args):
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert "Usage: igcli" in result.stdout and "attribute" in result.stdout


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

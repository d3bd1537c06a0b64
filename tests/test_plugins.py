"""Plugins: a package adds a method through the entry-point group ``igcli.methods`` (examples/plugin_method).

The example is made visible as an installed distribution without pip: a ``.dist-info`` folder holding the
entry points its ``pyproject.toml`` declares, on ``sys.path`` (in process) or ``PYTHONPATH`` (subprocesses),
next to the package's source. One slow test installs it with pip into a virtual environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import igcli
from igcli.baselines import Normalization
from igcli.data import load_rgb, normalize, preprocess_pixels
from igcli.errors import InvalidArgumentError
from igcli.methods import get_method, method_names, refresh
from igcli.methods.ig import IntegratedGradients
from igcli.models import Preprocessing, load_model
from igcli.output import Output
from igcli.recipe import Recipe

from cli_helpers import ROOT, TINY, TINY_ARGS, make_images, one_line, run_cli

EXAMPLE = ROOT / "examples" / "plugin_method"
FAST = [*TINY_ARGS, "--steps", "4", "--workers", "0", "--quiet"]


def declared_entry_points(pyproject: Path) -> dict[str, str]:
    """The ``igcli.methods`` entry points a pyproject.toml declares (its one section, read line by line)."""
    found, inside = {}, False
    for line in pyproject.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("["):
            inside = line == '[project.entry-points."igcli.methods"]'
        elif inside and "=" in line:
            name, _, value = line.partition("=")
            found[name.strip()] = value.strip().strip('"')
    return found


def make_distribution(folder: Path, name: str, entry_points: dict[str, str]) -> Path:
    """An installed-looking distribution ``name`` 0.1.0 in ``folder``: its METADATA and entry_points.txt."""
    info = folder / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[igcli.methods]\n{lines}")
    return folder


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """A folder in which the example plugin looks installed (its entry points as its pyproject declares)."""
    return make_distribution(tmp_path_factory.mktemp("site"), "igcli-meanig", declared_entry_points(EXAMPLE / "pyproject.toml"))


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory) -> Path:
    """A package whose entry points are each wrong in one way, and one that tries to replace ig."""
    return make_distribution(tmp_path_factory.mktemp("broken"), "igcli-broken", {
        "missing": "igcli_no_such_module:Method",  # the module is not there
        "notamethod": "json:dumps",  # not a Method
        "wrongname": "igcli_meanig:MeanColourIG",  # the class says meanig
        "ig": "igcli_meanig:MeanColourIG",  # a built-in name
    })


def plugin_env(*sites: Path) -> dict[str, str]:
    """Subprocess environment in which igcli (this checkout) sees the example's source and ``sites``."""
    return {"PYTHONPATH": os.pathsep.join([str(ROOT), str(EXAMPLE), *map(str, sites)])}


@pytest.fixture
def installed(monkeypatch, plugin_site, broken_site):
    """In this process: the example plugin and the broken package visible, the registry re-read (and again,
    with the plugin's module forgotten, afterwards)."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.syspath_prepend(str(plugin_site))
    monkeypatch.syspath_prepend(str(broken_site))
    refresh()
    yield
    sys.modules.pop("igcli_meanig", None)
    refresh()


def mean_colour(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W): every pixel of image b set to image b's per-channel mean."""
    return images.mean(dim=(2, 3), keepdim=True).expand_as(images).clone()


def tiny_inputs(paths: list[Path]) -> tuple[torch.Tensor, Preprocessing]:
    """The images as ``TINY_ARGS`` runs preprocess them: (B, 3, 16, 16) model inputs."""
    preprocessing = Preprocessing(16, 16)
    pixels = torch.stack([preprocess_pixels(load_rgb(str(p)), preprocessing) for p in paths])
    return normalize(pixels, preprocessing), preprocessing


def stored_maps(out: Path) -> tuple[dict, np.ndarray, list[str]]:
    """(settings, (N, C, H, W) maps, paths) of an output folder."""
    output = Output(out)
    return output.settings, np.asarray(output.column("attributions")[:]), [str(p) for p in output.column("paths")[:]]


# -- the example, in process ------------------------------------------------------------------------------------


def test_the_example_declares_its_method_under_the_class_name(installed):
    assert declared_entry_points(EXAMPLE / "pyproject.toml") == {"meanig": "igcli_meanig:MeanColourIG"}
    method = get_method("meanig")
    assert type(method).__name__ == "MeanColourIG" and method.name == "meanig"
    assert "meanig" in method_names() and method_names()[:4] == ("vg", "ig", "blurig", "gig")
    assert (method.path, method.takes_baseline, method.joins_any_two_points) == ("straight", False, True)


def test_meanig_is_ig_from_the_mean_colour_blended_towards_black(installed, convnet, images):
    normalization = Normalization((0.4, 0.5, 0.6), (0.2, 0.25, 0.3))
    inputs = normalization.from_pixels(images)
    result = igcli.attribute(convnet, inputs, method="meanig", steps=8, normalization=normalization)
    expected = igcli.attribute(convnet, inputs, method="ig", steps=8, baseline=mean_colour(inputs),
                               normalization=normalization)
    torch.testing.assert_close(result.attributions, expected.attributions, rtol=1e-6, atol=1e-8)
    # f at the path start is the model's probability of the flat mean-colour image: the start is that image.
    flat = normalization.from_pixels(mean_colour(images))  # the mean of pixels, normalised: the same image
    probability = convnet(flat).softmax(dim=1).gather(1, result.targets[:, None])[:, 0]
    torch.testing.assert_close(result.baseline_scores, probability.detach(), rtol=1e-5, atol=1e-7)
    assert result.settings["method"] == "meanig" and result.settings["blend"] == 0.0 and "baseline" not in result.settings

    black = normalization.from_pixels(torch.zeros_like(inputs))
    halfway = igcli.attribute(convnet, inputs, method="meanig", steps=8, normalization=normalization, blend=0.25)
    expected = igcli.attribute(convnet, inputs, method="ig", steps=8, normalization=normalization,
                               baseline=0.75 * mean_colour(inputs) + 0.25 * black)
    torch.testing.assert_close(halfway.attributions, expected.attributions, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(halfway.attributions, result.attributions)


def test_meanig_options_are_converted_and_checked(installed):
    method = get_method("meanig")
    assert method.resolve_options({"blend": "0.5"}) == {"blend": 0.5}  # text from --option, as float
    for given, problem in (({"blend": 1.5}, "blend must be between 0 and 1"), ({"blend": "half"}, "must be float"),
                           ({"sigma": 1}, "do not apply to method meanig; it takes: blend")):
        with pytest.raises(InvalidArgumentError, match=problem):
            method.resolve_options(given)


def test_an_explicit_start_wins_so_the_path_joins_any_two_points(installed, convnet, images):
    start = torch.rand(images.shape, generator=torch.Generator().manual_seed(3))
    walked = igcli.attribute(convnet, images, method="meanig", steps=8, baseline=start)
    expected = igcli.attribute(convnet, images, method="ig", steps=8, baseline=start)
    torch.testing.assert_close(walked.attributions, expected.attributions)


# -- broken plugins ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, problem", [
    ("missing", "cannot be loaded (ModuleNotFoundError"),
    ("notamethod", "not an igcli.methods.Method subclass"),
    ("wrongname", "the class says its name is 'meanig'"),
])
def test_a_broken_plugin_is_named_in_one_line(installed, name, problem):
    with pytest.raises(InvalidArgumentError) as caught:
        get_method(name)
    message = str(caught.value)
    assert problem in message and f"method {name}" in message and "package igcli-broken" in message
    assert "\n" not in message
    assert get_method("meanig").name == "meanig" and get_method("blurig").name == "blurig"  # others unharmed


def test_a_plugin_cannot_replace_a_built_in_method(installed):
    assert type(get_method("ig")) is IntegratedGradients
    assert method_names().count("ig") == 1


# -- the CLI, end to end ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def meanig_run(tmp_path_factory, plugin_site):
    """``igcli attribute`` with ``--method meanig``: (images, output folder)."""
    folder = tmp_path_factory.mktemp("meanig")
    paths = make_images(folder / "imgs", 3)
    result = run_cli("attribute", str(folder / "imgs"), "-o", str(folder / "out"), "--method", "meanig", *FAST,
                     env=plugin_env(plugin_site))
    assert result.returncode == 0, result.stderr
    return paths, folder / "out"


def test_cli_attribute_with_the_plugin_equals_ig_from_the_mean_colour(meanig_run):
    paths, out = meanig_run
    settings, maps, stored = stored_maps(out)
    assert stored == [str(p) for p in paths]
    assert (settings["method"], settings["path"], settings["rule"], settings["steps"]) == ("meanig", "straight", "riemann", 4)
    assert settings["blend"] == 0.0 and list(settings["option_names"]) == ["blend"] and "baseline" not in settings
    inputs, preprocessing = tiny_inputs(paths)
    expected = igcli.attribute(load_model(TINY).module, inputs, method="ig", steps=4, baseline=mean_colour(inputs),
                               normalization=preprocessing.normalization)
    np.testing.assert_allclose(maps, expected.attributions.numpy(), rtol=1e-5, atol=1e-7)


def test_cli_option_and_rule_reach_the_plugin(meanig_run, tmp_path, plugin_site):
    paths, _ = meanig_run
    out = tmp_path / "out"
    result = run_cli("attribute", *map(str, paths), "-o", str(out), "--method", "meanig", "--option", "blend=0.5",
                     "--rule", "idgi", *FAST, env=plugin_env(plugin_site))
    assert result.returncode == 0, result.stderr
    settings, maps, _ = stored_maps(out)
    assert (settings["blend"], settings["rule"]) == (0.5, "idgi")
    inputs, preprocessing = tiny_inputs(paths)
    black = preprocessing.normalization.from_pixels(torch.zeros_like(inputs))
    expected = igcli.attribute(load_model(TINY).module, inputs, method="ig", rule="idgi", steps=4,
                               baseline=0.5 * mean_colour(inputs) + 0.5 * black,
                               normalization=preprocessing.normalization)
    np.testing.assert_allclose(maps, expected.attributions.numpy(), rtol=1e-5, atol=1e-7)

    bad = run_cli("attribute", *map(str, paths), "-o", str(tmp_path / "bad"), "--method", "meanig", "--option",
                  "blend=2", *FAST, env=plugin_env(plugin_site))
    assert bad.returncode == 2 and "blend must be between 0 and 1" in one_line(bad.stderr)


def test_cli_help_lists_plugins_only_when_installed(plugin_site):
    listed = run_cli("attribute", "--help", env={**plugin_env(plugin_site), "COLUMNS": "200"})
    assert listed.returncode == 0 and "meanig" in listed.stdout
    plain = run_cli("attribute", "--help", env={"COLUMNS": "200"})
    assert plain.returncode == 0 and "meanig" not in plain.stdout


def test_evaluate_recomputes_with_the_plugin(meanig_run, plugin_site, monkeypatch):
    paths, out = meanig_run
    result = run_cli("evaluate", str(out), "--metric", "sensitivity,closed-path", "--model", TINY, "--device", "cpu",
                     "--json", "--quiet", env=plugin_env(plugin_site))
    assert result.returncode == 0, result.stderr
    (evaluated,) = json.loads(result.stdout)["results"]
    for name in ("sensitivity", "closed_path_mse"):
        assert evaluated["aggregate"][name]["count"] == 3 and np.isfinite(evaluated["aggregate"][name]["value"])
    # What evaluate recomputes with is the run's own method: it remakes the stored maps exactly.
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.syspath_prepend(str(plugin_site))
    refresh()
    try:
        settings, maps, stored = stored_maps(out)
        loaded = load_model(TINY, preprocessing={"resize": 16, "crop": 16})
        inputs, _ = tiny_inputs(paths)
        targets = torch.as_tensor(np.asarray(Output(out).column("targets")[:]))
        remade = Recipe.from_settings(settings).attribution_function(loaded, torch.device("cpu"), 4)(inputs, targets, stored)
        np.testing.assert_allclose(remade.numpy(), maps, rtol=1e-5, atol=1e-7)
    finally:
        sys.modules.pop("igcli_meanig", None)
        refresh()


def test_a_plugins_output_without_the_plugin(meanig_run, tmp_path):
    """render and the metrics that only read maps work anywhere; recomputing needs the plugin, and says so."""
    _, out = meanig_run
    rendered = run_cli("render", str(out), "-o", str(tmp_path / "png"), "--quiet")
    assert rendered.returncode == 0, rendered.stderr
    assert len(list((tmp_path / "png").glob("*.png"))) == 3
    read = run_cli("evaluate", str(out), "--metric", "insertion,completeness", "--model", TINY, "--device", "cpu",
                   "--json", "--quiet")
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout)["results"][0]["aggregate"]["insertion"]["count"] == 3
    refused = run_cli("evaluate", str(out), "--metric", "insertion,closed-path", "--model", TINY, "--device", "cpu")
    line = one_line(refused.stderr)  # before the model loads; not "closed-path needs ig or gig"
    assert refused.returncode == 2, refused.stderr
    assert "method 'meanig', which is not installed here" in line and "plugin" in line and not refused.stdout


def test_a_broken_plugin_fails_in_one_line_and_harms_nothing_else(tmp_path, plugin_site, broken_site):
    env = plugin_env(plugin_site, broken_site)
    images = make_images(tmp_path / "imgs", 1)
    broken = run_cli("attribute", str(images[0]), "-o", str(tmp_path / "a"), "--method", "missing", *FAST, env=env)
    assert broken.returncode == 2 and not (tmp_path / "a" / "index.h5").exists()
    line = one_line(broken.stderr)
    assert "method missing" in line and "igcli-broken" in line and "cannot be loaded" in line
    helped = run_cli("--help", env=env)
    assert helped.returncode == 0 and "Traceback" not in helped.stderr
    fine = run_cli("attribute", str(images[0]), "-o", str(tmp_path / "ig"), "--method", "ig", *FAST, env=env)
    assert fine.returncode == 0, fine.stderr
    with h5py.File(next((tmp_path / "ig").glob("shard-*.h5")), "r") as shard:
        assert shard.attrs["method"] == "ig" and "blend" not in shard.attrs  # the built-in ig, not the plugin


# -- a real installation ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_pip_install_editable_adds_the_method(tmp_path):
    """``pip install -e`` into a virtual environment (offline: no dependencies, no build isolation)."""
    source = tmp_path / "plugin_method"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))  # builds write here
    venv.create(tmp_path / "venv", system_site_packages=True, with_pip=False)
    python = tmp_path / "venv" / ("Scripts" if os.name == "nt" else "bin") / "python"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-e", str(source)],
                         capture_output=True, text=True, env=env, timeout=300)
    if pip.returncode != 0 and "No module named pip" in pip.stderr:
        pytest.skip("pip is not available to the virtual environment")
    assert pip.returncode == 0, pip.stderr
    env = {**env, "PYTHONPATH": str(ROOT), "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    listed = subprocess.run([str(python), "-m", "igcli", "attribute", "--help"], capture_output=True, text=True,
                            env=env, timeout=120, cwd=tmp_path)
    assert listed.returncode == 0 and "meanig" in listed.stdout, listed.stderr
    images = make_images(tmp_path / "imgs", 1)
    run = subprocess.run([str(python), "-m", "igcli", "attribute", str(images[0]), "-o", str(tmp_path / "out"),
                          "--method", "meanig", *FAST], capture_output=True, text=True, env=env, timeout=300,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert Output(tmp_path / "out").settings["method"] == "meanig"


# -- a plugin that fails in its own code -------------------------------------------------------------------------

FAULTY = '''
from igcli.methods import Method


class Faulty(Method):
    name, title, summary, reference = "faulty", "Faulty", "a start that fails", "none"
    path = "straight"

    def start(self, inputs, normalization, options):
        raise RuntimeError("the plugin's own bug")

    def make_path(self, inputs, baselines, options):
        from igcli.paths import StraightPath

        return StraightPath(inputs, baselines)
'''


@pytest.fixture
def faulty(monkeypatch, tmp_path):
    (tmp_path / "igcli_faulty.py").write_text(FAULTY)
    make_distribution(tmp_path, "igcli-faulty", {"faulty": "igcli_faulty:Faulty"})
    monkeypatch.syspath_prepend(str(tmp_path))
    refresh()
    yield tmp_path
    sys.modules.pop("igcli_faulty", None)
    refresh()


def test_a_plugin_failing_in_its_own_code_is_named_with_where(faulty, convnet, images):
    from igcli.errors import PluginError

    with pytest.raises(PluginError) as caught:
        igcli.attribute(convnet, images, method="faulty", steps=2)
    message = str(caught.value)
    assert message.startswith("method faulty from package igcli-faulty failed at ")
    assert f"{faulty / 'igcli_faulty.py'}:10: RuntimeError: the plugin's own bug" in message
    assert caught.value.exit_code == 1


def test_a_models_failure_while_a_plugin_runs_is_not_blamed_on_the_plugin(installed, images):
    class Failing(torch.nn.Module):
        def forward(self, x):
            if x.requires_grad:  # fine for the prediction, fails on the path
                raise RuntimeError("the model's own bug")
            return x.flatten(1)[:, :10]

    with pytest.raises(RuntimeError, match="the model's own bug"):
        igcli.attribute(Failing(), images, method="meanig", steps=2)


# -- whose code failed: the plugin's files, exactly ---------------------------------------------------------------

STRAIGHT_FROM_ZERO = '''
from igcli.methods import Method


class {cls}(Method):
    name, title, summary, reference = "{name}", "{cls}", "a straight path from zero", "none"
    path = "straight"

    def start(self, inputs, normalization, options):
        {body}

    def make_path(self, inputs, baselines, options):
        from igcli.paths import StraightPath

        return StraightPath(inputs, baselines)
'''


@pytest.fixture
def site_with(monkeypatch, tmp_path):
    """Write files (relative path -> text) and entry points into a folder on sys.path; forget them afterwards."""
    modules = []

    def make(files: dict[str, str], entry_points: dict[str, str]) -> Path:
        for relative, text in files.items():
            (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / relative).write_text(text)
            modules.append(Path(relative).parts[0].removesuffix(".py"))
        make_distribution(tmp_path, "igcli-site", entry_points)
        monkeypatch.syspath_prepend(str(tmp_path))
        refresh()
        return tmp_path

    yield make
    for name in modules:
        sys.modules.pop(name, None)
    refresh()


def test_a_single_module_plugin_does_not_own_its_neighbours(site_with, images):
    """A one-file plugin lives in site-packages beside torch and the model's package: a failure in those is
    not the plugin's (its folder used to count as its code, so the model's bug was blamed on the plugin)."""
    site = site_with({
        "igcli_zero.py": STRAIGHT_FROM_ZERO.format(cls="Zero", name="zero", body="return inputs * 0"),
        "a_model/__init__.py": ("import torch\n\n\nclass Failing(torch.nn.Module):\n    def forward(self, x):\n"
                                "        if x.requires_grad:\n            raise RuntimeError('the model bug')\n"
                                "        return x.flatten(1)[:, :10]\n"),
    }, {"zero": "igcli_zero:Zero"})
    import a_model

    assert Path(a_model.__file__).parent.parent == site
    with pytest.raises(RuntimeError, match="the model bug") as caught:
        igcli.attribute(a_model.Failing(), images, method="zero", steps=2)
    assert not isinstance(caught.value, igcli.errors.IgcliError)


def test_a_plugin_package_does_not_own_a_package_whose_name_extends_its_own(site_with, convnet, images):
    """igcli_x's code is igcli_x/...; igcli_xy/... is another package. The line named is the plugin's own."""
    site = site_with({
        "igcli_x/__init__.py": STRAIGHT_FROM_ZERO.format(cls="X", name="xm", body="import igcli_xy; return igcli_xy.helper()"),
        "igcli_xy/__init__.py": "def helper():\n    raise ValueError('the helper failed')\n",
    }, {"xm": "igcli_x:X"})
    with pytest.raises(igcli.errors.PluginError) as caught:
        igcli.attribute(convnet, images, method="xm", steps=2)
    assert f"failed at {site / 'igcli_x' / '__init__.py'}:10: ValueError: the helper failed" in str(caught.value)


@pytest.mark.parametrize("raised, code", [
    ("ValueError('first line' + chr(10) + 'second line' + chr(10) + 'z' * 5000)", 1),
    ("__import__('igcli').errors.InvalidArgumentError('bad option' + chr(10) + 'more detail')", 2),
])
def test_a_plugins_many_line_or_huge_message_is_still_one_short_line(tmp_path, raised, code):
    """The CLI's one-line rule holds whatever a plugin's exception says: its first line, cut short (a plugin's
    own error), or its lines joined (an igcli error the plugin raised)."""
    (tmp_path / "igcli_noisy.py").write_text(STRAIGHT_FROM_ZERO.format(cls="Noisy", name="noisy", body=f"raise {raised}"))
    make_distribution(tmp_path, "igcli-noisy", {"noisy": "igcli_noisy:Noisy"})
    images = make_images(tmp_path / "imgs", 1)
    run = run_cli("attribute", str(images[0]), "-o", str(tmp_path / "out"), "--method", "noisy", *FAST,
                  env={"PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])})
    line = one_line(run.stderr)
    assert run.returncode == code and len(line) < 500, line
    assert ("ValueError: first line; report it" in line) if code == 1 else line.endswith("bad option more detail")


def test_a_plugin_calling_sys_exit_is_named_not_a_silent_success(tmp_path):
    """sys.exit(0) inside a plugin's method used to end igcli with status 0, no summary and no maps."""
    (tmp_path / "igcli_quits.py").write_text(STRAIGHT_FROM_ZERO.format(cls="Quits", name="quits",
                                                                       body="raise SystemExit(0)"))
    make_distribution(tmp_path, "igcli-quits", {"quits": "igcli_quits:Quits"})
    images = make_images(tmp_path / "imgs", 1)
    run = run_cli("attribute", str(images[0]), "-o", str(tmp_path / "out"), "--method", "quits", "--json", *FAST,
                  env={"PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])})
    assert run.returncode == 1 and run.stdout == ""
    assert one_line(run.stderr).startswith("igcli: error: method quits from package igcli-quits failed at ")

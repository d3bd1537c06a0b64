"""Model specs: torchvision names offline from a weights file, model files, factories, and clear failures."""

from __future__ import annotations

import urllib.error

import pytest
import torch
import torchvision

from igcli.models import ModelLoadError, is_code_free, load_model

from fixtures.tiny_model import tiny


def test_torchvision_name_with_a_weights_file_works_offline(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.get_model("mobilenet_v3_small", weights=None).eval()
    weights = tmp_path / "mnv3.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, weights)  # wrapped
    loaded = load_model("mobilenet_v3_small", str(weights))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), reference(x))
    assert loaded.preprocessing.crop == 224 and loaded.preprocessing.normalization.mean == (0.485, 0.456, 0.406)
    assert loaded.categories[0] == "tench" and len(loaded.weights_sha256) == 64
    assert not loaded.module.training


def test_a_failed_download_names_the_cache_path_and_weights(monkeypatch, tmp_path):
    from torchvision.models import _api

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(_api, "load_state_dict_from_url", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ModelLoadError) as failure:
        load_model("resnet18")
    message = str(failure.value)
    assert str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in message and "--weights" in message
    assert failure.value.exit_code == 4


def test_weights_that_do_not_fit_and_unknown_names(tmp_path):
    weights = tmp_path / "tiny.pth"
    torch.save(tiny().state_dict(), weights)
    with pytest.raises(ModelLoadError, match="does not fit resnet18"):
        load_model("resnet18", str(weights))
    (tmp_path / "junk.pth").write_text("junk")
    with pytest.raises(ModelLoadError, match="not a PyTorch state-dict"):
        load_model("resnet18", str(tmp_path / "junk.pth"))
    with pytest.raises(ModelLoadError, match="did you mean resnet50"):
        load_model("resnet5O")


def test_torchscript_saved_module_and_factories(tmp_path):
    model = tiny()
    x = torch.randn(1, 3, 16, 16)
    expected = model(x)
    with pytest.warns(FutureWarning):  # deprecated upstream, still common in the wild
        torch.jit.script(model).save(str(tmp_path / "scripted.pt"))
    torch.save(model, tmp_path / "whole.pt")
    torch.save(model.state_dict(), tmp_path / "state.pt")
    for spec in (str(tmp_path / "scripted.pt"), str(tmp_path / "whole.pt"), "fixtures.tiny_model:tiny",
                 "tests/fixtures/tiny_model.py:tiny"):
        loaded = load_model(spec, trust_model_file=spec.endswith("whole.pt"))
        torch.testing.assert_close(loaded.module(x), expected)
        assert loaded.preprocessing.crop == 224  # ImageNet defaults where the model says nothing
    with pytest.raises(ModelLoadError, match="holds a state dict"):
        load_model(str(tmp_path / "state.pt"))
    with pytest.raises(ModelLoadError, match="has no callable 'nothing'"):
        load_model("fixtures.tiny_model:nothing")
    with pytest.raises(ModelLoadError, match="importing"):
        load_model("no_such_module_xyz:factory")
    factory_weights = tmp_path / "w.pth"
    torch.save({k: torch.zeros_like(v) for k, v in model.state_dict().items()}, factory_weights)
    zeroed = load_model("fixtures.tiny_model:tiny", str(factory_weights), preprocessing={"crop": 16, "mean": None})
    assert float(zeroed.module(x).detach().abs().sum()) == 0.0 and zeroed.preprocessing.crop == 16


class _Payload:
    """Unpickling this runs code: it creates the file ``marker``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickled_module_runs_no_code_without_trust_model_file(tmp_path):
    marker = tmp_path / "ran"
    torch.save(_Payload(str(marker)), tmp_path / "evil.pt")
    torch.save(tiny(), tmp_path / "whole.pt")
    for name in ("evil.pt", "whole.pt"):
        with pytest.raises(ModelLoadError, match="pickled whole module.*--trust-model-file"):
            load_model(str(tmp_path / name))
    assert not marker.exists()
    with pytest.raises(ModelLoadError):  # with the opt-in it is unpickled (and is not a model)
        load_model(str(tmp_path / "evil.pt"), trust_model_file=True)
    assert marker.exists()


def test_a_file_torch_did_not_write_is_named_as_such(tmp_path):
    for name, content in (("notes.txt", b"hello\n"), ("photo.pth", b"\xff\xd8\xff\xe0 a JPEG")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ModelLoadError, match="not a file that torch.save or torch.jit.save wrote"):
            load_model(str(tmp_path / name), trust_model_file=True)


def test_code_free_loading_refuses_files_and_factories(tmp_path):
    torch.save(tiny(), tmp_path / "whole.pt")
    for spec in (str(tmp_path / "whole.pt"), "tests/fixtures/tiny_model.py:tiny", "fixtures.tiny_model:tiny"):
        assert not is_code_free(spec)
        with pytest.raises(ModelLoadError, match="named by the output folder.*pass --model"):
            load_model(spec, code_free=True)
    assert is_code_free("resnet18") and is_code_free("efficientnet_lite0")

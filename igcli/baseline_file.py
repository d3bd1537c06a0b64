"""``--baseline FILE`` checked before the model loads: the file is what its name says it is.

Torch-free, so a junk file is refused (exit 2) before torch is imported and a model loaded. What needs the
model, the crop size when ``--crop`` is not given and the normalisation an image goes through, is checked
when the baseline is made (:func:`igcli.batch_baselines.baseline_from_spec`), which reads files the same way.

- ``.npy``: a numeric array of shape (3, H, W) in model-input space, finite; loaded without pickles;
- ``.pt``/``.pth``: a file ``torch.save`` writes (a zip archive holding a ``data.pkl``, or a legacy pickle);
  its tensor is read once torch is loaded, with ``weights_only=True``;
- anything else: an image PIL can decode.
"""

from __future__ import annotations

import io
import warnings
import zipfile

import numpy as np

from .errors import InvalidArgumentError, first_line
from .input_file import MiB, read_regular_file

MAX_BASELINE_BYTES = 512 * MiB  # a float32 (3, 4096, 4096) tensor is 192 MiB; an image file is far less
TENSOR_SUFFIXES = (".pt", ".pth")


def check_baseline_file(path: str, crop: int | None = None) -> None:
    """Refuse ``path`` (InvalidArgumentError, one line naming ``--baseline``) unless it reads as a baseline;
    ``crop`` (``--crop``, when given) is the side the model takes, checked for arrays."""
    data = read_regular_file("--baseline", path, MAX_BASELINE_BYTES)
    if path.endswith(".npy"):
        read_npy_baseline(path, data, crop)
    elif path.endswith(TENSOR_SUFFIXES):
        _check_torch_file(path, data)
    else:
        _check_image(path, data)


def read_npy_baseline(path: str, data: bytes, crop: int | None = None) -> np.ndarray:
    """The (3, H, W) float32 array a ``.npy`` baseline holds (``data``: the file's bytes); square ``crop``
    sides when given."""
    if not data.startswith(b"\x93NUMPY"):  # else numpy guesses a pickle and suggests allow_pickle
        raise InvalidArgumentError(f"--baseline {path}: not a .npy array file (no NumPy header); save it with "
                                   "numpy.save")
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as error:  # ValueError for junk or pickled objects, EOFError, ...
        raise InvalidArgumentError(f"--baseline {path}: not a .npy array file ({first_line(error)})") from None
    if not isinstance(array, np.ndarray) or not (np.issubdtype(array.dtype, np.integer)
                                                 or np.issubdtype(array.dtype, np.floating)):
        raise InvalidArgumentError(f"--baseline {path}: holds {array.dtype} values, not numbers")
    expected = f"(3, {crop}, {crop})" if crop else "(3, H, W)"
    if array.ndim != 3 or array.shape[0] != 3 or (crop and array.shape[1:] != (crop, crop)):
        raise InvalidArgumentError(f"--baseline {path}: shape {array.shape}, expected {expected} in model-input "
                                   "space")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise InvalidArgumentError(f"--baseline {path}: contains NaN or infinity")
    return array


def _check_torch_file(path: str, data: bytes) -> None:
    """What can be told without torch: a zip archive with a ``data.pkl`` (torch.save since torch 1.6) or a
    pickle (the legacy format, starting with the protocol byte 0x80)."""
    if data.startswith(b"\x80"):
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if any(name == "data.pkl" or name.endswith("/data.pkl") for name in archive.namelist()):
                return
    except (zipfile.BadZipFile, ValueError, OSError):
        pass
    raise InvalidArgumentError(f"--baseline {path}: not a tensor file written by torch.save; give a .pt file, a "
                               ".npy array or an image")


def _check_image(path: str, data: bytes) -> None:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # a truncated file fails here
    except Image.UnidentifiedImageError:
        raise InvalidArgumentError(f"--baseline {path}: not an image file igcli can read (nor .npy or .pt); give "
                                   "an image, a .npy array or a .pt tensor") from None
    except Exception as error:  # PIL raises OSError, SyntaxError, DecompressionBombWarning, ... for bad files
        raise InvalidArgumentError(f"--baseline {path}: cannot read it as an image ({first_line(error)}); give "
                                   "an image, a .npy array or a .pt tensor") from None


"""The preprocessing options (``--resize``, ``--crop``, ``--mean``, ``--std``, ``--interpolation``), checked.

Torch-free, so the CLI refuses a bad value (exit 2) before it imports torch and loads a model, and the one
definition here is also what :func:`igcli.models.override_preprocessing` applies: an image that every value
accepted here preprocesses into finite model inputs.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import InvalidArgumentError
from .validate import INTERPOLATIONS, MAX_PIXELS

CHANNELS = 3  # images are read as RGB (igcli.data.load_rgb): one mean and one std per channel
# Model inputs are float32 (x - mean) / std with x in [0, 1]: these bounds keep every input finite there.
MIN_STD = 1e-6
MAX_ABS_MEAN = 1e6


def check_preprocessing(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The given (non-None) entries of ``overrides``, checked and normalised.

    ``resize`` and ``crop`` are whole pixels, 1 to :data:`MAX_PIXELS` (what shards can store); ``mean`` and
    ``std`` are three finite numbers (R, G, B), each std >= :data:`MIN_STD` and |mean| <= :data:`MAX_ABS_MEAN`
    (so float32 inputs stay finite); ``interpolation`` is one of :data:`INTERPOLATIONS`.
    Raises InvalidArgumentError naming the option (``--crop``, ...) and what it needs.
    """
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    for key in ("resize", "crop"):
        if key in given:
            value = given[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PIXELS:
                raise InvalidArgumentError(f"--{key} {value}: must be a whole number of pixels, 1 to {MAX_PIXELS}")
    for key in ("mean", "std"):
        if key in given:
            values = given[key] = _channel_values(key, given[key])
            if key == "std" and any(v < MIN_STD for v in values):
                raise InvalidArgumentError(f"--std {_shown(values)}: every value must be at least {MIN_STD:g} (inputs "
                                           "are divided by it)")
            if key == "mean" and any(abs(v) > MAX_ABS_MEAN for v in values):
                raise InvalidArgumentError(f"--mean {_shown(values)}: every value must be within +/-{MAX_ABS_MEAN:g} "
                                           "(pixels are in [0, 1])")
    if "interpolation" in given and given["interpolation"] not in INTERPOLATIONS:
        raise InvalidArgumentError(f"--interpolation {given['interpolation']}: choose from {', '.join(INTERPOLATIONS)}")
    return given


def _channel_values(key: str, values: Any) -> tuple[float, ...]:
    try:
        numbers = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"--{key} {values!r}: expected {CHANNELS} numbers, R,G,B") from None
    if len(numbers) != CHANNELS:
        raise InvalidArgumentError(f"--{key} {_shown(numbers)}: give {CHANNELS} values, one per channel (R,G,B)")
    if not all(math.isfinite(v) for v in numbers):
        raise InvalidArgumentError(f"--{key} {_shown(numbers)}: NaN or infinity; give finite numbers")
    return numbers


def _shown(values: tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" for v in values)

"""Evaluation metrics for attribution maps (Yang et al. 2023, §4.3-4.6, Miglani et al. 2020, §3.2,
Swain and Singhi 2024, §4.2). Each module has one family; :mod:`igcli.jobs.evaluate` runs them over saved shards.

Every forward pass of a metric goes through an :class:`igcli.engine.Engine` (chunking by its batch size,
device, autocast, output-shape and target checks); the metrics here read softmax probabilities, so it must
be built with ``output="prob"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InvalidArgumentError

if TYPE_CHECKING:
    from ..engine import Engine


def check_engine(engine: Engine) -> None:
    """Raise :class:`InvalidArgumentError` unless ``engine`` scores softmax probabilities (the metrics' f)."""
    if engine.output != "prob":
        raise InvalidArgumentError(f"the metrics score softmax probabilities; build their Engine with "
                                   f"output='prob', not {engine.output!r}")

"""How a noise ensemble's maps become one map: the registry behind ``--noise-aggregate``.

- ``smoothgrad``: the mean map (Smilkov et al. 2017, Eq. 3; Captum ``NoiseTunnel`` ``smoothgrad``; PAIR
  ``GetSmoothedMask(magnitude=False)``).
- ``smoothgrad-sq``: the mean of squared maps (PAIR ``GetSmoothedMask(magnitude=True)``, its default; Hooker et
  al. 2019's SmoothGrad-Squared; Captum ``smoothgrad_sq``).
- ``vargrad``: the variance of the maps, E[a^2] - E[a]^2 (Adebayo et al. 2018; Captum ``vargrad``'s formula).

Torch-free at import, so the CLI can list and check the names before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .moments import RunningMoments


@dataclass(frozen=True)
class NoiseAggregate:
    """One way to combine a noise ensemble's maps.

    Attributes:
        name: what ``--noise-aggregate`` takes.
        squares: whether the running moments are of the squared maps.
        order: the moments needed (4 when the variance is the estimate and its error is wanted).
        linear: whether the map is linear in the samples' maps (then completeness carries over from them).
        help: one line.
    """

    name: str
    squares: bool
    order: int
    linear: bool
    help: str

    def estimate(self, moments: "RunningMoments") -> "torch.Tensor":
        """The ensemble's map from the moments of its N samples."""
        return moments.population_variance() if self.name == "vargrad" else moments.mean

    def standard_error(self, moments: "RunningMoments") -> "torch.Tensor":
        """Per feature, the standard error of :meth:`estimate` (NaN when too few samples to tell)."""
        if self.name == "vargrad":
            return moments.standard_error_of_variance()
        return moments.standard_error_of_mean()


NOISE_AGGREGATES: dict[str, NoiseAggregate] = {
    aggregate.name: aggregate for aggregate in (
        NoiseAggregate("smoothgrad", False, 2, True, "the mean map (Smilkov et al. 2017)"),
        NoiseAggregate("smoothgrad-sq", True, 2, False, "the mean of squared maps (PAIR's magnitude=True)"),
        NoiseAggregate("vargrad", False, 4, False, "the variance of the maps (Adebayo et al. 2018)"),
    )
}
NOISE_AGGREGATE_NAMES = tuple(NOISE_AGGREGATES)

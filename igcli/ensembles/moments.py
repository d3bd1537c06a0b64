"""Running moments of per-image maps over samples, in float64, without keeping the samples.

Welford's update for the mean and second central moment, extended to the third and fourth (Pebay 2008,
"Formulas for robust, one-pass parallel computation of covariances and arbitrary-order statistical moments",
Eq. 1.5 with one sample at a time) when the variance itself is the estimate (VarGrad) and its standard error
is wanted.
"""

from __future__ import annotations

import torch


class RunningMoments:
    """Moments over samples of (B, ...) maps: ``count``, ``mean``, ``m2`` (and ``m3``, ``m4`` when
    ``order`` is 4): sums of powers of deviations from the mean, as in Welford's algorithm."""

    def __init__(self, order: int = 2) -> None:
        if order not in (2, 4):
            raise ValueError("order must be 2 or 4")
        self.order = order
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2 = self.m3 = self.m4 = None

    def add(self, sample: torch.Tensor) -> None:
        """One more sample, (B, ...) of any float dtype."""
        value = sample.to(torch.float64)
        if self.mean is None:
            self.count, self.mean = 1, value.clone()
            self.m2 = torch.zeros_like(value)
            if self.order == 4:
                self.m3, self.m4 = torch.zeros_like(value), torch.zeros_like(value)
            return
        n_before = self.count
        self.count += 1
        n = self.count
        delta = value - self.mean
        delta_n = delta / n
        term = delta * delta_n * n_before
        self.mean += delta_n
        if self.order == 4:
            delta_n2 = delta_n * delta_n
            self.m4 += term * delta_n2 * (n * n - 3 * n + 3) + 6 * delta_n2 * self.m2 - 4 * delta_n * self.m3
            self.m3 += term * delta_n * (n - 2) - 3 * delta_n * self.m2
        self.m2 += term

    def sample_variance(self) -> torch.Tensor:
        """The unbiased variance of the samples (divisor count - 1); NaN with fewer than two."""
        if self.count < 2:
            return torch.full_like(self.mean, float("nan"))
        return self.m2 / (self.count - 1)

    def standard_error_of_mean(self) -> torch.Tensor:
        """sqrt(sample variance / count): the standard error of ``mean`` as an estimate; NaN below two samples."""
        return (self.sample_variance() / self.count).sqrt()

    def population_variance(self) -> torch.Tensor:
        """The variance with divisor count (Captum's VarGrad: E[a^2] - E[a]^2)."""
        return self.m2 / self.count

    def standard_error_of_variance(self) -> torch.Tensor:
        """The standard error of :meth:`population_variance`, from the fourth central moment: for the unbiased
        s^2, Var(s^2) = (mu4 - s^4 (n - 3) / (n - 1)) / n; the population variance is s^2 (n - 1) / n. NaN below
        four samples (the fourth moment means nothing with fewer)."""
        if self.order != 4:
            raise ValueError("the variance's standard error needs order 4")
        n = self.count
        if n < 4:
            return torch.full_like(self.mean, float("nan"))
        s2 = self.m2 / (n - 1)
        variance_of_s2 = (self.m4 / n - s2 * s2 * (n - 3) / (n - 1)) / n
        return variance_of_s2.clamp_min(0).sqrt() * (n - 1) / n

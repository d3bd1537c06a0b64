"""The ensemble driver: (image x member x point) rows through the engine, maps accumulated per member.

An ensemble's members, for every image, are (noise draw n, member k) pairs: N noisy copies of the input (one,
the input itself, without noise) times K members per copy (the listed baselines, K drawn references, or the
method's own K samples). The map is

    aggregate over n of  mean over k of  method(x + eps_n, baseline_nk)

so ``--baseline black --baseline white`` is the mean of the two runs, and a noise ensemble wraps whatever the
method with its baselines makes. Members are processed in groups: a group's members of all B images form one
batch of images for the method, so its (image, point) rows fill the engine's chunks; running moments keep
memory flat in N and K (:mod:`igcli.ensembles.moments`).

The error bar is the relative standard error of the map, ||SE|| / ||map|| (L2 over all features), from the
outermost random level: across the N noise draws when N >= 2 (each with fresh member draws, so it covers
those too), else across drawn members; NaN when nothing was drawn or too few draws were made to tell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..baselines import Normalization
from ..engine import Engine
from ..integrate import integrate_fixed_path
from ..methods import Method
from ..rules import make_rule
from ..schedules import Schedule
from .aggregates import NOISE_AGGREGATES
from .draws import ImageDraws, to_device
from .moments import RunningMoments
from .references import ReferenceSource
from .spec import EnsembleSpec

GROUP_CHUNKS = 8  # a group of members fills about this many engine chunks...
GROUP_IMAGES = 256  # ...with at most this many member images at once (bounds memory: a few float64 maps each)


@dataclass
class EnsembleMaps:
    """An ensemble's result for B images, all float64 on the engine's device.

    Attributes:
        attributions: (B, C, H, W) the aggregated maps.
        start_scores: (B,) mean f at the members' path starts (NaN where a method has none).
        score_change: (B,) mean over members of f(end) - f(start): what a linear aggregate's map sums to when
            completeness holds; NaN for other aggregates and for methods without path starts.
        relative_se: (B,) ||SE|| / ||map||; NaN when nothing was drawn or too few draws to tell.
    """

    attributions: torch.Tensor
    start_scores: torch.Tensor
    score_change: torch.Tensor
    relative_se: torch.Tensor


class _Members:
    """What every member of every image is made of: inputs, baselines and alphas, made as groups need them."""

    def __init__(self, method: Any, spec: EnsembleSpec, inputs: torch.Tensor, baselines: list[Any],
                 references: ReferenceSource | None, normalization: Normalization, seed: int, draws: ImageDraws,
                 options: dict[str, Any]) -> None:
        self.method, self.spec, self.inputs, self.references = method, spec, inputs, references
        self.normalization, self.seed, self.draws, self.options = normalization, seed, draws, options
        # Baselines that do not depend on the input are made once (a tensor's finiteness is checked once: that
        # check waits for the device); ``blur`` and a method's own start follow the noisy input.
        self.fixed = [None if _follows_input(spec_, method) else
                      method.make_baselines(spec_, inputs, normalization, seed, options) for spec_ in baselines]
        self.baselines = baselines
        self._noisy: tuple[int, torch.Tensor] | None = None
        self._drawn: tuple[int, torch.Tensor] | None = None
        self._range = (inputs.flatten(1).amax(dim=1) - inputs.flatten(1).amin(dim=1)).view(-1, 1, 1, 1)

    def input(self, n: int) -> torch.Tensor:
        """(B, C, H, W) noise draw n of every input: x + sigma eps, sigma = level x (max(x) - min(x)) per image
        (Smilkov et al. 2017, §3; PAIR ``GetSmoothedMask``)."""
        if not self.spec.has_noise:
            return self.inputs
        if self._noisy is None or self._noisy[0] != n:
            eps = to_device(self.draws.normal(n, self.inputs.shape[1:]), self.inputs.device).to(self.inputs.dtype)
            self._noisy = (n, self.inputs + self.spec.noise_level * self._range.to(self.inputs.dtype) * eps)
        return self._noisy[1]

    def baseline(self, n: int, k: int) -> torch.Tensor | None:
        """(B, C, H, W) member k's path start for noise draw n (None when the method's path makes its own)."""
        if self.references is not None:
            if self._drawn is None or self._drawn[0] != n:
                count = self.spec.members_per_noise_draw
                self._drawn = (n, self.draws.references(n, count, len(self.references)))
            indices = self._drawn[1][:, k]
            return self.references.take(indices, self.inputs.device, self.inputs.dtype)
        which = 0 if self.spec.method_samples else k
        name = self.baselines[which]
        if self.spec.method_samples and isinstance(name, str) and name.strip().lower() == "uniform":
            pixels = to_device(self.draws.uniform_pixels(n, k, self.inputs.shape[1:]), self.inputs.device)
            return self.normalization.from_pixels(pixels.to(self.inputs.dtype))  # a fresh draw per sample
        if self.fixed[which] is not None:
            return self.fixed[which]
        return self.method.make_baselines(name, self.input(n), self.normalization, self.seed, self.options)

    def fixed_start(self, k: int) -> bool:
        """Whether member k starts from the same baseline in every noise draw (f there is scored once)."""
        return self.references is None and not self.spec.method_samples and self.fixed[k] is not None

    def alphas(self, n: int, k: int) -> torch.Tensor:
        return to_device(self.draws.alphas(n, k), self.inputs.device)


class _PathWalker:
    """A path method's maps for a group of members, with f at both ends of every member's path.

    A fixed path walked by igcli's own driver (:func:`~igcli.integrate.integrate_fixed_path`) gets f at its ends
    from the walk where a point sits there (the input, for a ``right`` schedule) and f at a baseline that does not
    change between noise draws once per run: an ensemble costs no forward pass a single run would not. Other
    methods (Guided IG, plugins' own ``integrate``) are given f at each noisy input, scored once per draw.
    """

    def __init__(self, method: Any, spec: EnsembleSpec, engine: Engine, members: _Members,
                 schedule: Schedule, rule: str, targets: torch.Tensor, scores: torch.Tensor,
                 options: dict[str, Any]) -> None:
        self.method, self.spec, self.engine, self.members = method, spec, engine, members
        self.schedule, self.rule, self.targets, self.scores, self.options = schedule, rule, targets, scores, options
        self.own_driver = method.fixed_path and type(method).integrate is Method.integrate
        self.start_scores: dict[int, torch.Tensor] = {}  # member k -> f at its fixed baseline
        self._input_scores: tuple[int, torch.Tensor] | None = None

    def walk(self, chunk: list[tuple[int, int]], stacked: torch.Tensor, targets: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(maps, f at the starts, f at the ends) for the members ``chunk`` stacked member-major."""
        starts_list = [self.members.baseline(n, k) for n, k in chunk]
        starts = None if starts_list[0] is None else torch.cat(starts_list)
        accumulator = make_rule(self.rule, stacked.shape, stacked.device)
        if self.own_driver:
            known: dict[int, torch.Tensor] = {}
            if not self.spec.has_noise:
                known[self.schedule.steps] = self.scores.repeat(len(chunk))
            cached = [self.start_scores.get(k) for _, k in chunk]
            if all(value is not None for value in cached):
                known[0] = torch.cat(cached)
            path = self.method.make_path(stacked, starts, self.options)
            ends = integrate_fixed_path(self.engine, path, self.schedule, accumulator, targets, known)
            start, end = ends[:, 0], ends[:, -1]
            batch = self.targets.shape[0]
            for index, (_, k) in enumerate(chunk):
                if self.members.fixed_start(k):
                    self.start_scores.setdefault(k, start[index * batch:(index + 1) * batch])
        else:
            end = torch.cat([self._input_score(n) for n, _ in chunk]) if self.spec.has_noise else \
                self.scores.repeat(len(chunk))
            start = self.method.integrate(self.engine, stacked, starts, self.schedule, accumulator, targets, end,
                                          self.options)
        return accumulator.attributions, start.to(torch.float64), end.to(torch.float64)

    def _input_score(self, n: int) -> torch.Tensor:
        """f at noise draw n of every input (forward only), once per draw."""
        if self._input_scores is None or self._input_scores[0] != n:
            self._input_scores = (n, self.engine.scores(self.members.input(n), self.targets))
        return self._input_scores[1]


def _follows_input(spec: Any, method: Any) -> bool:
    if not method.takes_baseline:
        return True  # the method's own start (Blur IG's blurred input) is made from each noisy input
    return isinstance(spec, str) and spec.strip().lower() == "blur"


def attribute_ensemble(
    method: Any,
    spec: EnsembleSpec,
    engine: Engine,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    scores: torch.Tensor,
    *,
    schedule: Schedule | None,
    rule: str | None,
    baselines: list[Any],
    references: ReferenceSource | None,
    normalization: Normalization,
    seed: int,
    keys: list[str],
    options: dict[str, Any],
) -> EnsembleMaps:
    """The ensemble maps of (B, C, H, W) ``inputs`` (on the engine's device) for ``targets`` (B,).

    ``scores``: (B,) f(x) of the clean inputs. ``schedule``/``rule``: the path method's (None without a path).
    ``baselines``: the listed baseline specs (names or tensors); ``references``: where drawn baselines come
    from; ``keys``: one per image, seeding its draws.
    """
    batch = inputs.shape[0]
    members = _Members(method, spec, inputs, baselines, references, normalization, seed, ImageDraws(seed, keys),
                       options)
    noise_draws, per_draw = max(1, spec.noise_samples), spec.members_per_noise_draw
    pairs = [(n, k) for n in range(noise_draws) for k in range(per_draw)]
    # Rows a member adds to one engine pass: a fixed path's every point at once; an adaptive path (Guided IG)
    # walks all members of a group together, one row each per step; no path, one row.
    rows_per_member = schedule.steps if schedule is not None and method.fixed_path else 1
    group = max(1, min(len(pairs), GROUP_CHUNKS * engine.batch_size // (batch * rows_per_member),
                       max(1, GROUP_IMAGES // batch)))
    aggregate = NOISE_AGGREGATES[spec.noise_aggregate]
    outer = RunningMoments(aggregate.order if spec.has_noise else 2)
    inner = RunningMoments(2)
    start_sum = torch.zeros(batch, dtype=torch.float64, device=inputs.device)
    change_sum = torch.zeros_like(start_sum)
    walker = _PathWalker(method, spec, engine, members, schedule, rule, targets, scores, options)
    last_inner_se: torch.Tensor | None = None

    for first in range(0, len(pairs), group):
        chunk = pairs[first:first + group]
        stacked = torch.cat([members.input(n) for n, _ in chunk])
        repeated_targets = targets.repeat(len(chunk))
        if method.stochastic_samples:
            starts = torch.cat([members.baseline(n, k) for n, k in chunk])
            alphas = torch.cat([members.alphas(n, k) for n, k in chunk])
            maps = method.sample_maps(engine, stacked, starts, alphas, repeated_targets, options)
            end = start = torch.full((stacked.shape[0],), float("nan"), dtype=torch.float64, device=inputs.device)
        elif not method.has_path:
            end, maps = engine.scores_and_gradients_chunked(stacked, repeated_targets)
            end, start = end.to(torch.float64), torch.full(end.shape, float("nan"), dtype=torch.float64,
                                                             device=inputs.device)
        else:
            maps, start, end = walker.walk(chunk, stacked, repeated_targets)
        for index, (n, k) in enumerate(chunk):
            rows = slice(index * batch, (index + 1) * batch)
            start_sum += start[rows]
            change_sum += end[rows] - start[rows]
            if per_draw == 1:  # the member is the noise draw's map: no inner mean to keep
                draw_map = maps[rows]
            else:
                inner.add(maps[rows])
                if k < per_draw - 1:
                    continue
                draw_map = inner.mean
                if not spec.has_noise:  # the members' spread is the error bar only without noise
                    last_inner_se = inner.standard_error_of_mean()
                inner = RunningMoments(2)
            outer.add(draw_map.square() if aggregate.squares and spec.has_noise else draw_map)

    members_count = noise_draws * per_draw
    nan = torch.full_like(start_sum, float("nan"))
    if spec.has_noise:
        attributions, error = aggregate.estimate(outer), aggregate.standard_error(outer)
        linear = aggregate.linear
    else:
        attributions = outer.mean
        stochastic = spec.stochastic_members and last_inner_se is not None  # K = 1 draws nothing to compare
        error = last_inner_se if stochastic else torch.full_like(attributions, float("nan"))
        if spec.references and not spec.method_samples and spec.baseline_samples <= len(references):
            # K distinct references out of R: the finite population correction, Var = s^2 / K x (1 - K / R)
            # (Cochran 1977, "Sampling Techniques", Thm 2.2); 0 when every reference is used (the map is exact).
            error = error * (1 - spec.baseline_samples / len(references)) ** 0.5
        linear = True
    return EnsembleMaps(
        attributions=attributions,
        start_scores=start_sum / members_count,
        score_change=change_sum / members_count if linear else nan,
        relative_se=_relative_norm(error, attributions),
    )


def _relative_norm(error: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """(B,) ||error|| / ||maps||, L2 over each image's features."""
    return error.flatten(1).norm(dim=1) / maps.flatten(1).norm(dim=1)

"""The run recipe: one typed, versioned description of how a folder's maps were made.

It alone is written to every shard's attributes (``settings_json``, and each key as its own attribute for
``h5dump`` readers), read back by every reader, compared by ``--resume``, shown by ``render``, and turned back
into the attribution function ``evaluate`` recomputes with (:meth:`Recipe.attribution_function`).

Stored flat, with ``recipe`` naming the format: ``method``, ``rule``, ``path``, ``output``, the method's options
by name (listed in ``option_names``), the schedule (``steps``, ``schedule``, ``alphas``, ``schedule_weights``,
``boundaries``; for ``--steps auto`` instead ``schedule`` = ``auto``, ``step_tolerance``, ``min_steps`` and
``max_steps``), ``baseline`` (a list when several), ``seed``, the ensemble (``noise_samples``, ``noise_level``,
``noise_aggregate``, ``baseline_dir``, ``baseline_dir_sha256``, ``baseline_samples``: only when used), the model (``model``, ``weights``, ``weights_sha256``,
``preprocessing``), ``target``, ``labels``, ``dtype``, ``reduce``, ``amp``, ``part_count``, a job's own keys
(Split IG: ``psi``, ``tolerance``) and provenance (``command``, ``igcli_version``, ``torch_version``,
``device``). Shards written before the recipe had a format (no ``recipe`` key) read the same way: their keys
are a subset of these, and their methods' options are the built-in ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .errors import InvalidArgumentError
from .methods import BUILT_IN, ENTRY_POINT_GROUP, Method, get_method, method_names

if TYPE_CHECKING:  # pragma: no cover
    import torch

RECIPE_FORMAT = "igcli-recipe/1"
SPLIT_IG = "split-ig"  # igcli split's method name: IG on the straight path, with thresholds
# Fields that may change between a run and its resumption without changing a single number.
VOLATILE = frozenset({"command", "igcli_version", "torch_version", "device", "weights", "schedule_file"})
# The order in which a --resume refusal names differences: the ones a person is most likely to have changed.
FIRST_SHOWN = ("method", "rule", "model", "steps", "schedule", "step_tolerance", "min_steps", "max_steps", "output",
               "baseline", "noise_samples", "target")


@dataclass(frozen=True)
class Recipe:
    """How maps were made. ``options``: the method's options with defaults filled in; ``alphas``,
    ``schedule_weights``, ``boundaries``: the exact schedule (lists of floats in [0, 1]); ``step_tolerance``,
    ``min_steps``, ``max_steps``: ``--steps auto``'s target and limits (then ``steps`` is None and ``schedule``
    is ``auto``: the points were chosen per image, and are stored per row); ``baseline``: a name,
    ``file:PATH`` or ``tensor``, or a list of those (a baseline ensemble); None for methods without one or when
    references are drawn from ``baseline_dir``; ``extra``: a job's own settings."""

    method: str
    model: str = ""
    rule: str | None = "riemann"
    path: str | None = None
    output: str = "prob"
    options: dict[str, Any] = field(default_factory=dict)
    steps: int | None = None
    schedule: str | None = None
    alphas: list[float] | None = None
    schedule_weights: list[float] | None = None
    boundaries: list[float] | None = None
    step_tolerance: float | None = None
    min_steps: int | None = None
    max_steps: int | None = None
    baseline: str | list[str] | None = None
    seed: int = 0
    noise_samples: int | None = None
    noise_level: float | None = None
    noise_aggregate: str | None = None
    baseline_dir: str | None = None
    baseline_dir_sha256: str | None = None
    baseline_samples: int | None = None
    weights: str | None = None
    weights_sha256: str | None = None
    preprocessing: dict[str, Any] = field(default_factory=dict)
    target: str = "pred"
    labels: str | None = None
    dtype: str = "float32"
    reduce: str = "none"
    amp: bool = False
    part_count: int = 1
    schedule_file: str | None = None
    schedule_sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    igcli_version: str = ""
    torch_version: str = ""
    device: str = ""

    # -- to and from the stored attributes ----------------------------------------------------------------

    def as_settings(self) -> dict[str, Any]:
        """The flat, JSON-serialisable form stored in shards (see the module docstring)."""
        flat: dict[str, Any] = {"recipe": RECIPE_FORMAT}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in ("options", "extra"):
                flat.update(value)
            elif value is not None or item.name in ("rule", "path"):
                flat[item.name] = value
        flat["option_names"] = sorted(self.options)
        return flat

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> "Recipe":
        """Read a recipe from stored settings, of this format or from before it had one."""
        names = {item.name for item in fields(cls)} - {"options", "extra"}
        option_names = settings.get("option_names")
        if not isinstance(option_names, list):  # before the recipe: the built-in method's options
            method = BUILT_IN.get("ig" if settings.get("method") == SPLIT_IG else str(settings.get("method")))
            option_names = [option.name for option in method.options] if method else []
        options = {name: settings[name] for name in option_names if name in settings}
        known = names | set(options) | {"recipe", "option_names"}
        extra = {key: value for key, value in settings.items() if key not in known}
        return cls(**{key: settings[key] for key in names if key in settings}, options=options, extra=extra)

    def differences(self, other: "Recipe") -> list[str]:
        """The stored keys whose values differ, volatile ones aside, most telling first."""
        mine, theirs = self.as_settings(), other.as_settings()
        keys = (set(mine) | set(theirs)) - VOLATILE - {"recipe"}
        differing = [key for key in keys if mine.get(key) != theirs.get(key)]
        return sorted(differing, key=lambda key: (FIRST_SHOWN.index(key) if key in FIRST_SHOWN else len(FIRST_SHOWN), key))

    # -- back to computation ------------------------------------------------------------------------------

    @property
    def short_name(self) -> str:
        """The method and, when not the default, its rule: ``ig``, ``ig + idgi``."""
        return self.method + (f" + {self.rule}" if self.rule not in (None, "riemann") else "")

    @property
    def path_method(self) -> str:
        """The registered method that walked the path (Split IG's is ``ig``)."""
        return "ig" if self.method == SPLIT_IG else self.method

    def method_object(self) -> Method:
        """The :class:`~igcli.methods.Method` (a plugin's must be installed: InvalidArgumentError otherwise,
        naming the method and saying it comes from a plugin)."""
        if self.path_method not in method_names():  # not built in, and no installed package provides it
            raise InvalidArgumentError(
                f"the maps were made with method {self.path_method!r}, which is not installed here: install the "
                f"plugin package that provides it (entry point {self.path_method!r} in group {ENTRY_POINT_GROUP})")
        return get_method(self.path_method)

    @property
    def adaptive(self) -> bool:
        """Whether the points were chosen per image (``--steps auto``): no schedule to rebuild; recomputing runs
        the same deterministic refinement with the recorded tolerance and limits."""
        return self.step_tolerance is not None

    def adaptive_settings(self) -> dict[str, Any]:
        """:func:`igcli.attribute`'s keyword arguments for the recorded ``--steps auto`` (empty otherwise)."""
        if not self.adaptive:
            return {}
        return {"steps": "auto", "tolerance": self.step_tolerance, "min_steps": self.min_steps,
                "max_steps": self.max_steps}

    def rebuilt_schedule(self):
        """The exact :class:`~igcli.schedules.Schedule` the run used (None for a method without a path)."""
        from .schedules import schedule_from_settings

        return schedule_from_settings(self.as_settings()) if self.steps and not self.adaptive else None

    def attribution_function(self, loaded: Any, device: "torch.device", batch_size: int
                             ) -> Callable[..., "torch.Tensor"]:
        """``recompute(images, targets, paths, baseline=None, keys=None)``: the maps this recipe makes for
        (B, C, H, W) model inputs, as stored ((B, C, H, W) or (B, H, W) with ``reduce``, float32, on the host).
        ``keys`` seed an ensemble's draws (the ``draw_keys`` an :class:`~igcli.output.Output` gives; default
        ``paths``).
        ``baseline`` (model-input space) replaces the recorded one when given. ``loaded``: the
        :class:`~igcli.models.LoadedModel` the maps were made with. A ``--steps auto`` recipe refines again with
        the recorded tolerance and limits: the refinement is deterministic, so the same image gets the same
        points (the stored ``step_points``) and map; a changed input or baseline gets its own points."""
        from .api import attribute, describe
        from .batch_baselines import baseline_from_spec, batch_baseline
        from .maps import reduce_channels

        method = self.method_object()
        schedule = self.rebuilt_schedule()
        # The schedule as attribute() takes it: the recorded one, or steps="auto" and its limits (no schedule)
        steps = self.adaptive_settings() or {"steps": schedule.steps if schedule else 1,
                                              "schedule": schedule or "right"}
        recorded = self.baseline if isinstance(self.baseline, list) else [self.baseline or "black"]
        # Settings each of the right type can still contradict one another (or ask for 10^13 draws): check them
        # together now, before a reference folder is read, so the caller can name the shard they came from.
        describe(method.name, self.rule or "riemann", **steps, baseline=["black" if spec.startswith("file:") else spec
                                                         for spec in recorded],
                 output=self.output, seed=self.seed, noise_samples=self.noise_samples or 0,
                 noise_level=self.noise_level, noise_aggregate=self.noise_aggregate,
                 references=bool(self.baseline_dir), baseline_samples=self.baseline_samples, **self.options)
        specs: list[Any] = [baseline_from_spec(spec[len("file:"):], loaded, device)
                            if isinstance(spec, str) and spec.startswith("file:") else spec for spec in recorded]
        references = self.references(loaded)

        def recompute(images: "torch.Tensor", targets: "torch.Tensor", paths: Sequence[str],
                      baseline: "torch.Tensor | None" = None, keys: Sequence[str] | None = None) -> "torch.Tensor":
            if baseline is not None:
                baselines: Any = baseline
            elif method.stochastic_samples:
                baselines = specs  # drawn per sample (uniform), as the run drew them
            else:
                baselines = [batch_baseline(spec, paths, self.seed, images.shape[1:], loaded, device) for spec in specs]
            ensemble = {} if baseline is not None and not method.stochastic_samples else dict(
                references=references, baseline_samples=self.baseline_samples)
            maps = attribute(loaded.module, images, targets, method=method.name, rule=self.rule or "riemann",
                             **steps, baseline=baselines,
                             output=self.output, batch_size=batch_size, device=device, amp=self.amp,
                             normalization=loaded.preprocessing.normalization, seed=self.seed,
                             noise_samples=self.noise_samples or 0, noise_level=self.noise_level,
                             noise_aggregate=self.noise_aggregate,
                             keys=list(keys if keys is not None else paths),
                             check_completeness=False,  # the run's to judge, once
                             **ensemble, **self.options).attributions
            return reduce_channels(maps, self.reduce).cpu()

        return recompute

    def references(self, loaded: Any):
        """The reference images the run drew baselines from (``baseline_dir``), read again with the run's
        preprocessing; InvalidArgumentError when the folder is gone or its files changed since."""
        if not self.baseline_dir:
            return None
        from .ensembles.references import FolderReferences, ReferencesChangedError

        try:
            references = FolderReferences(self.baseline_dir, loaded.preprocessing, self.baseline_dir_sha256)
        except ReferencesChangedError:
            raise
        except InvalidArgumentError as error:
            raise InvalidArgumentError(f"the maps drew references from {self.baseline_dir}, which cannot be read now "
                                       f"({error})") from None
        return references

    @property
    def is_ensemble(self) -> bool:
        """Whether the maps average random draws or several baselines (and the shards hold ``relative_se``)."""
        if self.noise_samples or self.baseline_dir or isinstance(self.baseline, list):
            return True
        return self.path_method in method_names() and get_method(self.path_method).stochastic_samples is not None

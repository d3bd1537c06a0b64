"""``igcli evaluate``: metrics over saved shards (insertion/deletion, ABPC, SIC/AIC with entropy and MS-SSIM
information levels, localization, completeness; see the README for what is still to come).

For each row of an output it reloads the input image (where it is now: :func:`igcli.output.locate_image`,
``--root``), preprocesses it as the run did (settings ``preprocessing``), ranks pixels by the stored map (``--rank``, recorded with every result) and runs
the perturbed images through the model named in the settings (or ``--model``) in batches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ..data import describe_decode_error, load_rgb, normalize, preprocess_pixels
from ..engine import Engine, default_batch_size, resolve_device
from ..errors import InvalidArgumentError, first_line
from ..metrics import pic
from ..metrics.catalog import METRIC_VALUES, NEEDS_MODEL, PIC_METRICS, RECOMPUTING, SCORED_BY_MODEL, parse_metrics
from ..metrics.ground_truth import GroundTruth
from ..metrics.localization import best_f1_and_mae, roc_auc
from ..metrics.perturbation import abpc, insertion_deletion
from ..metrics.ranking import RANKINGS, has_ranking, pixel_scores
from ..metrics.stability import ZERO_MAP, closed_path_error, jpeg_stability, sensitivity
from ..models import LoadedModel, ModelLoadError, Preprocessing, load_model
from ..text import path_seed, shown_path
from ..output import DRAW_KEYS, IMAGE_PATHS, Output, missing_image_hint
from ..recipe import Recipe
from ..validate import OutputError
from .evaluate_results import EvaluateResult, aggregate
from .pipeline import Job, run_job

@dataclass
class EvaluateJob:
    """What ``igcli evaluate`` is asked to do."""

    source: str | os.PathLike
    metrics: Sequence[str] = ("insertion", "deletion")
    rank: str = "signed"
    model: str | None = None  # default: the model named in the shards
    weights: str | None = None
    masks: str | None = None
    boxes: str | None = None
    batch_size: int | None = None
    device: str | None = None
    limit: int | None = None
    seed: int = 0  # PIC's random 1% of revealed pixels: seeded per image from (seed, path)
    trust_model_file: bool = False  # let --model FILE be a pickled whole module (runs its code)
    root: str | os.PathLike | None = None  # --root: where the input images are now (igcli.output.locate_image)
    min_pred: float | None = None  # SIC/AIC: not scored below this score of the original (PAIR's min_pred_value)


def _overrides(stored: dict[str, Any]) -> dict[str, Any]:
    """Recorded preprocessing as load_model overrides."""
    return {key: stored[key] for key in ("resize", "crop", "mean", "std", "interpolation") if key in stored}


class EvaluateRun(Job):
    """``evaluate`` on the pipeline: open (the output's recipe, ground truth, the model, the Engine, the recompute
    function), then the stored rows batch by batch through the metrics, then the aggregates (:meth:`summary`)."""

    label = "igcli evaluate"

    def __init__(self, job: EvaluateJob) -> None:
        self.job = job
        self.last: str | None = None  # the path of the last row done: one image's topK rows are consecutive

    def open(self) -> int:
        job = self.job
        metrics = self.metrics = parse_metrics(job.metrics)
        if job.rank not in RANKINGS:
            raise InvalidArgumentError(f"--rank {job.rank!r}: choose from {', '.join(RANKINGS)}")
        output = self.output = Output(job.source, root=job.root)
        recipe = output.recipe
        self.preprocessing = Preprocessing.from_dict(recipe.preprocessing)
        if job.min_pred is not None and not 0.0 <= job.min_pred <= 1.0:
            raise InvalidArgumentError(f"--min-pred {job.min_pred}: must be in [0, 1]")
        self.result = EvaluateResult(str(job.source), output.settings, job.rank, metrics, seed=job.seed,
                                     min_pred=job.min_pred)
        if set(RECOMPUTING) & set(metrics):
            recipe.method_object()  # a plugin's method must be installed to recompute: say so before the model loads
        if "closed-path" in metrics and not _joins_any_two_points(recipe):
            raise InvalidArgumentError(
                f"--metric closed-path needs a method whose path runs between any two points (ig, gig); "
                f"{job.source} has {recipe.method}"
            )
        if "closed-path" in metrics and recipe.is_ensemble:
            raise InvalidArgumentError(
                f"--metric closed-path walks one path between two points; {job.source} holds ensemble maps (noise, "
                "several or drawn baselines), which average many paths")
        self.truth = GroundTruth(job.masks, job.boxes, self.preprocessing) if "localization" in metrics else None
        self.device = resolve_device(job.device)
        self.batch_size = job.batch_size or default_batch_size(self.device)
        self.engine, self.recompute = None, None
        if NEEDS_MODEL & set(metrics):
            loaded = _load_recipe_model(job, recipe)
            # Every forward pass of the metrics goes through this Engine. It scores in float32 whatever the
            # run's --amp: amp changed how the maps were computed, not what is measured about them, and
            # half-precision probabilities (bfloat16 on a CPU: 3 significant digits) would make runs with and
            # without amp incomparable. Its NaN rows come back as NaN values, and _skip_nonfinite skips those
            # images alone (no raise_if_nonfinite).
            self.engine = Engine(loaded.module.eval().to(self.device), output="prob", batch_size=self.batch_size,
                                 device=self.device, amp=False)
            if set(RECOMPUTING) & set(metrics):
                try:
                    self.recompute = recipe.attribution_function(loaded, self.device, self.batch_size)
                except (InvalidArgumentError, KeyError, TypeError, ValueError) as error:
                    raise OutputError(f"{output.shards[0]}: its settings cannot rebuild the attribution method "
                                      f"({first_line(error)})") from None
        self.total = len(output) if job.limit is None else min(job.limit, len(output))  # rows (--limit counts rows)
        # Progress counts images, as attribute's does: a topK run has K rows per image.
        return len(_first_rows(output.column("paths")[:self.total], None))

    def batches(self) -> Iterator[dict[str, Any]]:
        """Chunks of at most ``batch_size`` stored rows, ``--limit`` rows in all."""
        done = 0
        for rows in self.output.iter_rows(["attributions", "paths", IMAGE_PATHS, DRAW_KEYS, "targets",
                                           "completeness_gap"]):
            for begin in range(0, len(rows["paths"]), self.batch_size):
                if done >= self.total:
                    return
                end = min(begin + self.batch_size, len(rows["paths"]), begin + self.total - done)
                done += end - begin
                yield {k: v[begin:end] for k, v in rows.items()}

    def step(self, chunk: dict[str, Any]) -> tuple[int, int]:
        job, result = self.job, self.result
        skips = len(result.skipped)
        _evaluate_chunk(chunk, self.metrics, job.rank, self.engine, self.preprocessing, self.truth, self.device,
                        result, self.reporter, job.seed, self.recompute, job.root)
        fresh = _first_rows(chunk["paths"], self.last)  # images whose first row is in this chunk
        self.last = chunk["paths"][-1]
        lost = {entry["path"] for entry in result.skipped[skips:]}
        skipped = sum(path in lost for path in fresh)
        return len(fresh) - skipped, skipped

    def summary(self, interrupted: bool, seconds: float, loop_seconds: float) -> EvaluateResult:
        self.result.aggregate = aggregate(self.result, self.metrics)
        self.result.seconds = round(seconds, 3)
        return self.result


def evaluate(job: EvaluateJob, *, quiet: bool = False) -> EvaluateResult:
    """Compute ``job.metrics`` for every row of ``job.source`` (an OUT folder, its index or shards)."""
    return run_job(EvaluateRun(job), quiet=quiet)


def _load_recipe_model(job: EvaluateJob, recipe: Recipe) -> LoadedModel:
    """The model the maps were made with (``--model``/``--weights`` override it): loaded by the recipe's name,
    with its recorded weights file when it is here, and without running code a folder names (code-free)."""
    spec = job.model or recipe.model
    stored_weights = recipe.weights if job.model is None else None
    if stored_weights and not os.path.isfile(stored_weights):
        stored_weights = None  # made on another machine: load as the spec says, then compare hashes
    try:
        loaded = load_model(spec, job.weights or stored_weights, preprocessing=_overrides(recipe.preprocessing),
                            trust_model_file=job.trust_model_file, code_free=job.model is None)
    except ModelLoadError as error:
        if job.weights or not stored_weights:
            raise
        raise ModelLoadError(f"the weights file named by the output folder: {error}; pass --weights FILE") from None
    if job.model is None and recipe.weights_sha256 and loaded.weights_sha256 not in (None, recipe.weights_sha256):
        raise InvalidArgumentError(f"the weights of {spec} differ from those the maps were made with; pass --weights")
    return loaded


def _first_rows(paths: Sequence[str], previous: str | None) -> list[str]:
    """The entries of ``paths`` that start an image (one image's topK rows are consecutive); ``previous``: the
    path of the row before them."""
    starts = []
    for path in paths:
        if path != previous:
            starts.append(path)
        previous = path
    return starts


def _evaluate_chunk(chunk, metrics, rank, engine, preprocessing, truth, device, result, reporter, seed,
                    recompute=None, root=None) -> None:
    paths = list(chunk["paths"])  # as given: how results name images, and what seeds per-image noise
    image_paths = list(chunk[IMAGE_PATHS])  # where the images are now
    maps = torch.from_numpy(np.asarray(chunk["attributions"], dtype=np.float32))
    scores = pixel_scores(maps, rank)
    rankable = has_ranking(scores)
    rows = [{"path": p, "target": int(t)} for p, t in zip(paths, chunk["targets"])]
    usable = list(range(len(paths)))
    images = None
    if NEEDS_MODEL & set(metrics):
        pixels, usable = [], []
        loaded: dict[str, torch.Tensor | None] = {}  # one decode and one skip line per image, not per topK row
        for i, path in enumerate(paths):
            if image_paths[i] not in loaded:
                try:
                    loaded[image_paths[i]] = preprocess_pixels(
                        load_rgb(image_paths[i], exif_transpose=preprocessing.exif_transpose), preprocessing)
                except Exception as error:
                    loaded[image_paths[i]] = None
                    reason = f"cannot reload the input image: {describe_decode_error(error)}"
                    if isinstance(error, FileNotFoundError):
                        reason += f" at {shown_path(image_paths[i])} ({missing_image_hint(root)})"
                    if result.skipped[-1:] != [{"path": path, "reason": reason}]:  # its rows went on in this chunk
                        result.skipped.append({"path": path, "reason": reason})
                        reporter.message(f"skipped {shown_path(path)}: {reason}")
            if loaded[image_paths[i]] is not None:
                pixels.append(loaded[image_paths[i]])
                usable.append(i)
        if pixels:
            images = normalize(torch.stack(pixels).to(device), preprocessing)
    unrankable = [i for i in usable if not bool(rankable[i])]
    result.unrankable += len(unrankable)
    ranked = [i for i in usable if bool(rankable[i])]
    values: dict[int, dict[str, float]] = {i: {} for i in usable}
    if "completeness" in metrics:
        for i in usable:
            values[i]["completeness_gap"] = float(chunk["completeness_gap"][i])
    if images is not None and recompute is not None:
        targets = torch.as_tensor([rows[i]["target"] for i in usable], device=device)
        usable_paths = [paths[i] for i in usable]
        keys = [chunk[DRAW_KEYS][i] for i in usable]  # the seeds of an ensemble's draws, as the run had them

        def recompute_usable(x, t, start=None):
            return recompute(x, t, usable_paths, start, keys=keys)

        if "sensitivity" in metrics:
            measured = sensitivity(recompute_usable, images, targets, usable_paths, seed)
            for k, i in enumerate(usable):
                if np.isnan(float(measured[k])):  # an all-zero map: unscorable, with the reason, not a NaN value
                    result.unscorable["sensitivity"] = result.unscorable.get("sensitivity", 0) + 1
                    values[i]["sensitivity_unscorable"] = ZERO_MAP
                else:
                    values[i]["sensitivity"] = float(measured[k])
        if "closed-path" in metrics:
            measured = closed_path_error(recompute_usable, images, targets,
                                         usable_paths, seed, preprocessing.normalization)
            for k, i in enumerate(usable):
                values[i]["closed_path_mse"] = float(measured[k])
        if "jpeg-stability" in metrics:
            measured = jpeg_stability(recompute_usable, torch.stack(pixels).to(device),
                                      lambda stack: normalize(stack, preprocessing), targets)
            for k, i in enumerate(usable):
                values[i]["jpeg_stability"] = float(measured[k])
    if images is not None and ranked:
        position = [usable.index(i) for i in ranked]
        x = images[position]
        targets = torch.as_tensor([rows[i]["target"] for i in ranked], device=device)
        s = scores[ranked].to(device)
        if {"insertion", "deletion"} & set(metrics):
            black = preprocessing.normalization.from_pixels(torch.zeros_like(x))
            measured = insertion_deletion(engine, x, black, s, targets)
            for name in ("insertion", "deletion"):
                if name in metrics:
                    result.curves.setdefault(name, []).extend(
                        curve for curve in measured[f"{name}_curve"].cpu().numpy() if np.isfinite(curve).all())
            for k, i in enumerate(ranked):
                for name in METRIC_VALUES["insertion"] * ("insertion" in metrics) + METRIC_VALUES["deletion"] * ("deletion" in metrics):
                    values[i][name] = float(measured[name][k])
        if "abpc" in metrics:
            measured = abpc(engine, x, s, targets)
            for k, i in enumerate(ranked):
                values[i]["abpc"] = float(measured["abpc"][k])
        wanted = [m for m in PIC_METRICS if m in metrics]
        if wanted:  # the bokeh images of every ranked image of the chunk go through the model together
            levels = [level for level in pic.LEVELS if any(pic.level_of(name) == level for name in wanted)]
            all_samples = pic.measure_batch(
                engine, [pixels[position[k]].permute(1, 2, 0).numpy() for k in range(len(ranked))],
                [scores[i].numpy() for i in ranked], [rows[i]["target"] for i in ranked],
                lambda stack: normalize(stack, preprocessing),
                [path_seed(seed, paths[i]) for i in ranked], levels)
            for i, samples in zip(ranked, all_samples):
                if not np.isfinite(samples.probability).all():  # AIC's hits mean nothing then: NaN for all
                    values[i].update({name: float("nan") for name in wanted})
                    continue
                for name, curve in pic.image_curves(samples, levels, result.min_pred).items():
                    if name not in wanted:
                        continue
                    if isinstance(curve, str):
                        result.unscorable[name] = result.unscorable.get(name, 0) + 1
                        values[i][f"{name}_unscorable"] = curve
                    else:
                        result.curves.setdefault(name, []).append(curve)
                        values[i][name] = float(np.trapezoid(curve, pic.curve_grid()))
    if "localization" in metrics:
        for i in ranked:
            try:
                mask = truth(paths[i], image_paths[i])
            except (FileNotFoundError, OSError) as error:
                result.skipped.append({"path": paths[i], "reason": f"localization: {error}"})
                reporter.message(f"skipped {shown_path(paths[i])}: localization: {error}")
                continue
            flat = scores[i].numpy()
            values[i]["roc_auc"] = roc_auc(flat, mask)
            values[i]["best_f1"], values[i]["best_mae"] = best_f1_and_mae(flat, mask)
    for i in ranked:
        _skip_nonfinite(paths[i], values[i], metrics, result, reporter)
    for i in usable:
        rows[i].update(values[i], ranked=bool(rankable[i]))
        result.rows.append(rows[i])


def _joins_any_two_points(recipe: Recipe) -> bool:
    """Whether the recorded method's path can be walked between any two points (a plugin's must be installed
    to tell)."""
    try:
        return recipe.method_object().joins_any_two_points
    except InvalidArgumentError:
        return False


def _skip_nonfinite(path: str, values: dict[str, float], metrics: list[str], result: EvaluateResult,
                    reporter) -> None:
    """Drop an image's model-scored values that are NaN (the model's output was NaN or infinite for it or a
    perturbed copy) and record it as skipped for those metrics, as attribute skips such an image (exit code 5);
    its other values stay."""
    lost = [m for m in metrics if m in SCORED_BY_MODEL
            and any(not np.isfinite(values.get(name, 0.0)) for name in METRIC_VALUES[m])]
    if not lost:
        return
    for name in (name for m in lost for name in METRIC_VALUES[m]):
        values.pop(name, None)
    reason = f"{', '.join(lost)}: NaN or infinity in the model's outputs for this image or a perturbed copy of it"
    if result.skipped[-1:] != [{"path": path, "reason": reason}]:  # a topK run: one entry per image
        result.skipped.append({"path": path, "reason": reason})
        reporter.message(f"skipped {shown_path(path)}: {reason}")

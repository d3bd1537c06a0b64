"""``igcli attribute``: image folders in, HDF5 shards out."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, List

import typer

from . import common as c
from . import step_options
from .app import app


@app.command(
    "attribute",
    help=(
        "Compute attribution maps for images and write them to HDF5 shards in OUT.\n\nInputs are split "
        "deterministically across SLURM array tasks (--shard i/n) and torchrun ranks; every part writes its own "
        "shards and OUT/index.h5 links them. Bad images are skipped, each with its reason."
    ),
    epilog="Examples: igcli attribute imgs/ -o out --model efficientnet_lite0 --method ig --rule idgi;  "
    "find imgs -name '*.jpg' | igcli attribute - -o out;  torchrun --nproc-per-node 4 -m igcli attribute imgs/ -o out",
)
@c.handle_errors
def attribute_command(
    inputs: Annotated[List[str], typer.Argument(help="Image files, folders (recursive) or - for paths on stdin.",
                                                show_default=False, metavar="IMAGES")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="OUT", help="Output folder for the HDF5 shards.",
                                      rich_help_panel=c.OUTPUT_PANEL)],
    model: c.ModelOption = "resnet50",
    weights: c.WeightsOption = None,
    trust_model_file: c.TrustModelFileOption = False,
    resize: c.ResizeOption = None,
    crop: c.CropOption = None,
    mean: c.MeanOption = None,
    std: c.StdOption = None,
    interpolation: c.InterpolationOption = None,
    method: c.MethodOption = c.Method.ig,
    rule: c.RuleOption = c.Rule.riemann,
    steps: step_options.StepsOption = None,
    tolerance: step_options.ToleranceOption = None,
    min_steps: step_options.MinStepsOption = None,
    max_steps: step_options.MaxStepsOption = None,
    schedule: c.ScheduleOption = None,
    baseline: c.BaselinesOption = None,
    max_sigma: c.MaxSigmaOption = None,
    fraction: c.FractionOption = None,
    max_dist: c.MaxDistOption = None,
    anchors: c.AnchorsOption = None,
    samples: c.SamplesOption = None,
    option: c.MethodOptionsOption = None,
    target: c.TargetOption = "pred",
    labels: c.LabelsOption = None,
    output: c.OutputOption = c.Output.prob,
    seed: c.SeedOption = 0,
    noise_samples: c.NoiseSamplesOption = 0,
    noise_level: c.NoiseLevelOption = None,
    noise_aggregate: c.NoiseAggregateOption = None,
    baseline_dir: c.BaselineDirOption = None,
    baseline_samples: c.BaselineSamplesOption = None,
    batch_size: c.BatchSizeOption = None,
    workers: c.WorkersOption = None,
    device: c.DeviceOption = None,
    amp: c.AmpOption = False,
    dtype: c.DtypeOption = c.StorageDtype.float32,
    reduce: c.ReduceOption = c.Reduce.none,
    shard_size: c.ShardSizeOption = 256,
    resume: c.ResumeOption = False,
    overwrite: c.OverwriteOption = False,
    shard: c.ShardOption = None,
    null: c.NullOption = False,
    quiet: c.QuietOption = False,
    json_summary: c.JsonOption = False,
) -> None:
    """Compute attribution maps for images and write them to HDF5 shards in OUT.

    Inputs are split deterministically across SLURM array tasks (--shard i/n) and torchrun ranks; every part
    writes its own shards and OUT/index.h5 links them. Bad images are skipped, each with its reason.
    """
    from ..errors import InvalidArgumentError
    from ..jobs.checks import AttributeJob, check_attribute_job

    if baseline and baseline_dir is not None:  # even --baseline black: given, it would go unused
        raise InvalidArgumentError("--baseline-dir replaces --baseline; give one or the other")
    job = AttributeJob(
        inputs=inputs,
        out=out,
        model=model,
        weights=str(weights) if weights is not None else None,
        trust_model_file=trust_model_file, null=null,
        preprocessing=c.preprocessing_overrides(resize, crop, mean, std, interpolation),
        method=method.value,
        rule=rule.value,
        steps=steps,
        step_tolerance=tolerance,
        min_steps=min_steps,
        max_steps=max_steps,
        schedule=c.parse_schedule(schedule),
        baseline=baseline[0] if baseline and len(baseline) == 1 else (baseline or "black"),
        method_options=c.method_options(method.value, option, max_sigma=max_sigma, fraction=fraction,
                                        max_dist=max_dist, anchors=anchors, samples=samples),
        noise_samples=noise_samples,
        noise_level=noise_level,
        noise_aggregate=noise_aggregate.value if noise_aggregate is not None else None,
        baseline_dir=str(baseline_dir) if baseline_dir is not None else None,
        baseline_samples=baseline_samples,
        target=target,
        labels=str(labels) if labels is not None else None,
        output=output.value,
        batch_size=batch_size,
        workers=workers,
        device=device,
        dtype=dtype.value,
        reduce=reduce.value,
        shard_size=shard_size,
        resume=resume,
        overwrite=overwrite,
        shard=shard,
        amp=amp,
        seed=seed,
        command=shlex.join(["igcli", *sys.argv[1:]]),
    )
    check_attribute_job(job)  # before torch is imported and the model loaded: refusals come at once
    from ..jobs.attribute import run_attribute

    summary = run_attribute(job, quiet=quiet)
    code = c.interrupted_exit_code() if summary.interrupted else summary.exit_code  # 143 after SIGTERM
    c.commit_outcome()  # the summary states the exit code: a later signal must not contradict it
    if json_summary:
        c.print_json({**summary.as_dict(), "exit_code": code})
    elif not quiet:
        typer.echo(summary_line(summary), err=True)
    if summary.interrupted:
        raise c.fail(c.INTERRUPTED, code)
    if code:
        raise typer.Exit(code)


def summary_line(summary) -> str:
    """The closing line on stderr; each time says what it measures, so the rate agrees with its own time."""
    return (
        f"{summary.attributed} images attributed ({summary.rows} rows) in {summary.seconds:.1f} s: model load "
        f"{summary.load_seconds:.1f} s, attribution {summary.attribution_seconds:.1f} s at "
        f"{summary.images_per_second:.2f} images/s; {summary.already_done} already done, "
        f"{len(summary.skipped)} skipped -> {summary.out}"
        + (f"; error bar (relative SE of the maps) median {summary.relative_se['median']:.3g}, p90 "
           f"{summary.relative_se['p90']:.3g}, max {summary.relative_se['max']:.3g}" if summary.relative_se else "")
        + (evaluations_text(summary.gradient_evaluations) if summary.gradient_evaluations else "")
    )


def evaluations_text(spread: dict) -> str:
    """``--steps auto``'s part of the closing line: the spread of gradient evaluations per map and how many maps
    met the tolerance."""
    return (f"; gradient evaluations per map mean {spread['mean']:.1f}, median {spread['median']:g}, p90 "
            f"{spread['p90']:g}, max {spread['max']}; tolerance met for {spread['tolerance_met']:.0%} of "
            f"{spread['count']} maps")

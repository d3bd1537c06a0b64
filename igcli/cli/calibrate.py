"""``igcli calibrate``: RiemannOpt sample-point schedules per model and method."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from . import common as c
from .app import app


class Statistic(str, Enum):
    mean = "mean"
    median = "median"


@app.command(
    "calibrate",
    help=(
        'Find the sample points that minimise the Riemann error bound (RiemannOpt) and save them as a '
        "schedule.\n\nEstimates |g'(alpha)| of the method's integrand on calibration images, starts from the "
        "sqrt(|g'|) density and refines with Powell's method; the result is never worse than uniform on the "
        'bound.'
    ),
    epilog="Example: igcli calibrate imgs/ --model efficientnet_lite0 --method blurig --steps 16 --plot blurig.png; "
    "then igcli attribute imgs/ -o out --model efficientnet_lite0 --method blurig --steps 16 --schedule auto",
)
@c.handle_errors
def calibrate_command(
    inputs: Annotated[List[str], typer.Argument(help="Calibration image files, folders or - for paths on stdin.",
                                                show_default=False, metavar="IMAGES")],
    model: c.ModelOption = "resnet50",
    weights: c.WeightsOption = None,
    trust_model_file: c.TrustModelFileOption = False,
    resize: c.ResizeOption = None,
    crop: c.CropOption = None,
    mean: c.MeanOption = None,
    std: c.StdOption = None,
    interpolation: c.InterpolationOption = None,
    method: Annotated[c.PathMethod, typer.Option("--method", help="The path method to calibrate.",
                                               rich_help_panel=c.METHOD_PANEL)] = c.PathMethod.ig,
    steps: Annotated[int, typer.Option("--steps", "-n", min=1, help="Sample points of the schedule.",
                                       rich_help_panel=c.METHOD_PANEL)] = 32,
    probe_steps: Annotated[int, typer.Option("--probe-steps", "-k", min=3, help="Equispaced points where the "
                           "integrand is evaluated to estimate |g'|.", rich_help_panel=c.METHOD_PANEL)] = 128,
    images: Annotated[int, typer.Option("--images", min=1, help="Calibration images: a random sample (--seed) of "
                      "the inputs.", rich_help_panel=c.METHOD_PANEL)] = 64,
    statistic: Annotated[Statistic, typer.Option("--statistic", help="Reduce |g'| over features by the mean "
                         "(the paper's) or the median.", rich_help_panel=c.METHOD_PANEL)] = Statistic.mean,
    baseline: c.BaselineOption = "black",
    max_sigma: c.MaxSigmaOption = None,
    fraction: c.FractionOption = None,
    max_dist: c.MaxDistOption = None,
    anchors: c.AnchorsOption = None,
    option: c.MethodOptionsOption = None,
    target: c.TargetOption = "pred",
    labels: c.LabelsOption = None,
    output: c.OutputOption = c.Output.prob,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1, help="Seed of the image sample and random "
                                      "baselines.", rich_help_panel=c.METHOD_PANEL)] = 0,
    batch_size: c.BatchSizeOption = None,
    workers: c.WorkersOption = None,
    device: c.DeviceOption = None,
    amp: c.AmpOption = False,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Schedule file to write [default: the user "
                   "cache, $IGCLI_CACHE or ~/.cache/igcli/schedules, where --schedule auto finds it].",
                   show_default=False, rich_help_panel=c.OUTPUT_PANEL, metavar="FILE")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also draw |g'(alpha)| with the chosen and uniform "
                    "points to this PNG.", rich_help_panel=c.OUTPUT_PANEL, metavar="FILE")] = None,
    null: c.NullOption = False,
    quiet: c.QuietOption = False,
    json_summary: c.JsonOption = False,
) -> None:
    """Find the sample points that minimise the Riemann error bound (RiemannOpt) and save them as a schedule.

    Estimates |g'(alpha)| of the method's integrand on calibration images, starts from the sqrt(|g'|) density
    and refines with Powell's method; the result is never worse than uniform on the bound.
    """
    preprocessing = c.preprocessing_overrides(resize, crop, mean, std, interpolation)  # before torch loads
    from ..jobs.calibrate import CalibrateJob, run_calibrate

    job = CalibrateJob(
        inputs=inputs, model=model, weights=str(weights) if weights is not None else None,
        trust_model_file=trust_model_file, null=null,
        preprocessing=preprocessing, method=method.value,
        steps=steps, probe_steps=probe_steps, images=images, seed=seed, statistic=statistic.value,
        output=output.value, baseline=baseline,
        method_options=c.method_options(method.value, option, max_sigma=max_sigma, fraction=fraction,
                                        max_dist=max_dist, anchors=anchors),
        target=target, labels=str(labels) if labels is not None else None, batch_size=batch_size, workers=workers,
        device=device, amp=amp, out=out, plot=plot,
    )
    summary = run_calibrate(job, quiet=quiet)
    c.commit_outcome()  # the summary states the exit code: a later signal must not contradict it
    if json_summary:
        c.print_json(summary.as_dict())
    elif not quiet:
        typer.echo(
            f"Eq. 9 bound: uniform {summary.objective_uniform:.4g}, sqrt-density start {summary.objective_start:.4g}, "
            f"Powell {summary.objective_powell:.4g} -> kept {summary.chosen} ({summary.objective:.4g}) from "
            f"{summary.images} images; schedule written to {summary.file}",
            err=True,
        )
    if summary.exit_code:
        raise typer.Exit(summary.exit_code)

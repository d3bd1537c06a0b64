"""``igcli split``: Split IG, the saturation point alpha* and the paper's statistics."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from . import common as c
from . import step_options
from .app import app


@app.command(
    "split",
    help=(
        "Split IG: find the saturation point alpha* (the smallest alpha where f exceeds f(x') + psi (f(x) - "
        "f(x'))), then IG on [0, alpha*] (Left) and [alpha*, 1] (Right) per psi, beside the full IG.\n\nShards "
        "as in attribute, plus left, right, alpha_star and the curves f(alpha), ||grad f(alpha)||; the summary "
        "gives the paper's Tables 1-3 (norm ratios Right/Left, mean alpha*, cosine similarities)."
    ),
    epilog="Example: igcli split imgs/ -o split --model efficientnet_lite0 --psi 0.9,0.95,0.99 --steps 200",
)
@c.handle_errors
def split_command(
    inputs: Annotated[List[str], typer.Argument(help="Image files, folders (recursive) or - for paths on stdin.",
                                                show_default=False, metavar="IMAGES")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the HDF5 shards.",
                                      rich_help_panel=c.OUTPUT_PANEL)],
    psi: Annotated[str, typer.Option("--psi", help="Saturation threshold(s) in (0, 1), comma-separated.",
                                     rich_help_panel=c.METHOD_PANEL)] = "0.9",
    tolerance: Annotated[float, typer.Option("--tolerance", min=1e-15, max=0.5, help="Refine alpha* by bisection "
                         "(forward passes only) to this width in alpha.", rich_help_panel=c.METHOD_PANEL)] = 1e-4,
    model: c.ModelOption = "resnet50",
    weights: c.WeightsOption = None,
    trust_model_file: c.TrustModelFileOption = False,
    resize: c.ResizeOption = None,
    crop: c.CropOption = None,
    mean: c.MeanOption = None,
    std: c.StdOption = None,
    interpolation: c.InterpolationOption = None,
    rule: c.RuleOption = c.Rule.riemann,
    steps: step_options.FixedStepsOption = None,
    schedule: c.ScheduleOption = None,
    baseline: c.BaselineOption = "black",
    target: c.TargetOption = "pred",
    labels: c.LabelsOption = None,
    output: Annotated[c.Output, typer.Option("--output", help="The score explained: logit (the paper's choice) or "
                      "prob.", rich_help_panel=c.METHOD_PANEL)] = c.Output.logit,
    seed: c.SeedOption = 0,
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
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Folder for per-image Figure 1 plots (f(alpha) with "
                    "alpha*, ||grad f||, Left/Right/Full maps) and aggregate.png.", rich_help_panel=c.OUTPUT_PANEL,
                    metavar="DIR")] = None,
    null: c.NullOption = False,
    quiet: c.QuietOption = False,
    json_summary: c.JsonOption = False,
) -> None:
    preprocessing = c.preprocessing_overrides(resize, crop, mean, std, interpolation)  # before torch loads
    from ..jobs.split import SplitJob, run_split, summarize_split

    job = SplitJob(
        inputs=inputs, out=out, model=model, weights=str(weights) if weights is not None else None,
        trust_model_file=trust_model_file, null=null,
        preprocessing=preprocessing, method="ig",
        rule=rule.value, steps=steps, schedule=c.parse_schedule(schedule), baseline=baseline, target=target,
        labels=str(labels) if labels is not None else None, output=output.value, batch_size=batch_size,
        workers=workers, device=device, dtype=dtype.value, reduce=reduce.value, shard_size=shard_size,
        resume=resume, overwrite=overwrite, shard=shard, amp=amp, seed=seed,
        command=shlex.join(["igcli", *sys.argv[1:]]), psis=psi, tolerance=tolerance, plot=plot,
    )
    summary = run_split(job, quiet=quiet)
    statistics = summarize_split(out)
    code = c.interrupted_exit_code() if summary.interrupted else summary.exit_code  # 143 after SIGTERM
    c.commit_outcome()  # the summary states the exit code: a later signal must not contradict it
    if json_summary:
        c.print_json({**summary.as_dict(), "exit_code": code, "statistics": statistics.as_dict()})
    else:
        _print_table(statistics)
    if summary.interrupted:
        raise c.fail(c.INTERRUPTED, code)
    if code:
        raise typer.Exit(code)


def _print_table(statistics) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Split IG over {statistics.images} images (means over images where alpha* exists)")
    table.add_column("statistic")
    for psi, found in zip(statistics.psis, statistics.found):
        table.add_column(f"psi = {psi:g} (n={found})", justify="right")
    labels = {"ratio_l2": "||Right|| / ||Left||, L2 (Table 1)", "ratio_l1": "||Right|| / ||Left||, L1 (Table 1)",
              "alpha_star": "alpha* (Table 2)", "cos_left_right": "cos(Left, Right) (Table 3)",
              "cos_left_full": "cos(Left, Full) (Table 3)", "cos_right_full": "cos(Right, Full) (Table 3)"}
    for name, label in labels.items():
        values = statistics.means.get(name) or [float("nan")] * len(statistics.psis)
        table.add_row(label, *(f"{v:.4f}" for v in values))
    Console(file=c.data_stream()).print(table)

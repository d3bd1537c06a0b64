"""``igcli evaluate``: metrics over saved shards, in parts, resumable, several runs side by side."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from ..metrics.catalog import METRICS
from . import common as c
from .app import app

SCALE_PANEL = "Parts and results"


@app.command(
    "evaluate",
    help=(
        "Score saved attribution maps with the metrics of `igcli metrics` (faithfulness, information curves, "
        "localization, robustness, sanity checks, complexity); the papers are listed under References in the "
        "README. Several OUT folders are compared side by side.\n\nPer-image results are written as they come to "
        "OUT/evaluations/NAME/ (or --results DIR), so a part (--shard i/n, SLURM arrays, torchrun) or an "
        "interrupted run loses nothing: --resume scores only the rest, and --summary prints the merged results "
        "of every part without computing. Pixels are ranked by the channel sum of the map (--rank signed: most "
        "positive first; abs; positive); the ranking is recorded with every result."
    ),
    epilog="Examples: igcli evaluate out-ig out-idgi --metric insertion,deletion --rank abs --csv scores.csv;  "
    "igcli evaluate out --metric sensitivity -O sensitivity.radius=0.1 --shard 0/4;  igcli evaluate out --summary",
)
@c.handle_errors
def evaluate_command(
    sources: Annotated[List[Path], typer.Argument(help="igcli output folders (or index.h5 / shard files).",
                                                  show_default=False, metavar="OUT")],
    metric: Annotated[Optional[str], typer.Option("--metric", help=f"Comma-separated metrics: {', '.join(METRICS)} "
                      "(see igcli metrics) [default: insertion,deletion; with --summary: every evaluation found].",
                      show_default=False)] = None,
    metric_option: Annotated[Optional[List[str]], typer.Option("--metric-option", "-O", metavar="METRIC.NAME=VALUE",
                             help="A metric's option, e.g. sensitivity.radius=0.1 (see igcli metrics); "
                             "repeatable.")] = None,
    rank: Annotated[Optional[str], typer.Option("--rank", help="Pixel ranking: signed (most positive first), abs or "
                    "positive [default: signed].", show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model to score with [default: the one "
                     "named in the shards].", show_default=False)] = None,
    weights: c.WeightsOption = None,
    trust_model_file: c.TrustModelFileOption = False,
    masks: Annotated[Optional[Path], typer.Option("--masks", help="Folder of ground-truth PNG masks (nonzero = "
                     "object) named like the inputs, for localization metrics.", metavar="DIR")] = None,
    boxes: Annotated[Optional[Path], typer.Option("--boxes", help="Bounding boxes for localization metrics: a CSV of "
                     "path,xmin,ymin,xmax,ymax or a folder of Pascal VOC XML files.", metavar="PATH")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Evaluate only the first N stored maps.")] = None,
    root: Annotated[Optional[Path], typer.Option("--root", help="The input images moved: the folder that now "
                    "holds what the folder given to igcli attribute held; images are looked up by their path "
                    "below it.", show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1, help="Seed of the metrics' random draws "
                    "(SIC/AIC's random 1% of pixels, noise), per image from seed and path.")] = 0,
    min_pred: Annotated[Optional[float], typer.Option("--min-pred", min=0.0, max=1.0, metavar="P", help="SIC/AIC: "
                        "leave unscored an image whose original the model scores below P (PAIR's min_pred_value, "
                        "0.8 there) [default: off, as the IDGI paper].", show_default=False)] = None,
    batch_size: c.BatchSizeOption = None,
    device: c.DeviceOption = None,
    encode_workers: Annotated[Optional[int], typer.Option("--encode-workers", min=0, metavar="N", help="Processes "
                              "for SIC/AIC's lossless WebP encodes beside the model; 0: in this process [default: "
                              "the cores the model leaves, at least 1].", show_default=False)] = None,
    shard: Annotated[Optional[str], typer.Option("--shard", help="Score part i of n of the images, e.g. 0/4 "
                     "(default: from SLURM_ARRAY_TASK_ID/COUNT).", metavar="i/n", rich_help_panel=SCALE_PANEL)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Go on with this evaluation: score only the maps no run "
                      "or part has scored yet.", rich_help_panel=SCALE_PANEL)] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Score again, replacing this evaluation's results "
                         "(this part's only, with --shard).", rich_help_panel=SCALE_PANEL)] = False,
    results: Annotated[Optional[Path], typer.Option("--results", help="Keep evaluation folders here instead of "
                       "OUT/evaluations (a read-only OUT).", metavar="DIR", rich_help_panel=SCALE_PANEL)] = None,
    summary: Annotated[bool, typer.Option("--summary", help="Print the merged results already written (every "
                       "part), computing nothing.", rich_help_panel=SCALE_PANEL)] = False,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Also write per-image values to this CSV.",
                    metavar="FILE")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Draw the aggregate curves (insertion, deletion, "
                    "SIC/AIC) of every output to this PNG.", metavar="FILE")] = None,
    quiet: c.QuietOption = False,
    json_summary: c.JsonOption = False,
) -> None:
    from ..jobs.evaluate import EvaluateJob, evaluate, summarize
    from ..jobs.evaluate_results import write_csv
    from ..metrics.catalog import parse_metric_options, parse_metrics

    names = parse_metrics(metric) if metric is not None else None
    if summary:
        results_list = [r for source in sources
                        for r in summarize(source, metrics=names, rank=rank, results=results, limit=limit)]
    else:
        names = names or ["insertion", "deletion"]
        parse_metric_options(metric_option, names)  # refusals before any model loads
        results_list = []
        for source in sources:
            job = EvaluateJob(source, names, rank=rank or "signed", model=model,
                              weights=str(weights) if weights else None, masks=str(masks) if masks else None,
                              boxes=str(boxes) if boxes else None, batch_size=batch_size, device=device, limit=limit,
                              seed=seed, trust_model_file=trust_model_file, root=root, min_pred=min_pred,
                              options=metric_option, shard=shard, resume=resume, overwrite=overwrite,
                              encode_workers=encode_workers,
                              results=results, command=shlex.join(["igcli", *sys.argv[1:]]))
            results_list.append(evaluate(job, quiet=quiet))
            if results_list[-1].interrupted:
                break  # the sources after it are not started: report what was done
    for result in results_list:
        for line in result.warnings:
            typer.echo(f"igcli: warning: {line}", err=True)
    interrupted = any(r.interrupted for r in results_list)
    code = c.interrupted_exit_code() if interrupted else 5 if any(r.skipped for r in results_list) else 0
    if csv_path is not None:
        write_csv(results_list, csv_path)
    if plot is not None:
        from ..figures import plot_metric_curves

        curves = {_column_title(r): r.aggregate_curves() for r in results_list}
        plot_metric_curves(plot, curves, title=f"igcli evaluate, rank {results_list[0].rank}")
    c.commit_outcome()  # the results are final: a later signal must not turn them into an interrupt
    if json_summary:
        c.print_json({"results": [r.as_dict() for r in results_list], "exit_code": code})
    else:
        _print_table(results_list)
        if not quiet and not summary:
            for r in results_list:
                typer.echo(_progress_line(r), err=True)
    if interrupted:
        raise c.fail(c.INTERRUPTED, code)
    if code:
        raise typer.Exit(code)


def _column_title(result) -> str:
    title = f"{Path(result.source).name} ({result.recipe.short_name})"
    return title if result.rank == "signed" else f"{title}, rank {result.rank}"


def _progress_line(result) -> str:
    state = "complete" if result.complete else f"{result.rows_scored} of {result.rows_total} maps scored so far"
    return (f"{result.scored_now} images scored now (part {result.part}) at {result.images_per_second:.2f} images/s "
            f"in {result.seconds:.1f} s; evaluation {state} -> {result.folder}")


def _print_table(results) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..metrics.catalog import better_mark

    ranks = sorted({r.rank for r in results})
    table = Table(title=f"igcli evaluate (rank: {', '.join(ranks)}; mean over images, median in brackets; SIC/AIC: "
                        "area under the aggregate curve)")
    table.add_column("value")
    table.add_column("better")
    for result in results:
        rank = "" if len(ranks) == 1 else f", rank {result.rank}"
        table.add_column(f"{Path(result.source).name}\n{result.recipe.short_name}{rank}", justify="right")
    names = list(dict.fromkeys(n for r in results for n in r.aggregate))
    for name in names:
        cells = []
        for result in results:
            value = result.aggregate.get(name)
            if not value:
                cells.append("-")
            elif "unscorable" in value:
                cells.append(f"{value['value']:.4f} n={value['count']}, {value['unscorable']} unscorable")
            else:
                cells.append(f"{value['value']:.4f} ({value['median']:.4f}) n={value['count']}")
        table.add_row(name, better_mark(name), *cells)
    table.add_row("unrankable / skipped", "", *(f"{r.unrankable} / {len(r.skipped)}" for r in results))
    if any(not r.complete for r in results):
        table.add_row("maps scored", "", *(f"{r.rows_scored} of {r.rows_total}" for r in results))
    Console(file=c.data_stream()).print(table)

"""``igcli evaluate``: metrics over saved shards, several runs side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from . import common as c
from .app import app


@app.command(
    "evaluate",
    help=(
        "Score saved attribution maps: insertion and deletion (Yang et al. 2023, §4.3), ABPC and "
        "max-sensitivity (Miglani et al. 2020, §3.2), SIC/AIC with normalized entropy or MS-SSIM (Yang et al. "
        "2023, §4.4-4.5), JPEG stability (Singhi and Kumari 2024, §4.5.2), closed-path error (Kapishnikov et al. "
        "2021, §5.1), localization against masks or boxes (ROC-AUC, best F1, MAE; Yang et al. 2023, §4.6) and "
        "completeness; the papers are listed under References in the README. "
        "Several OUT folders are compared side by side.\n\nPixels are ranked by the channel sum of the map "
        "(--rank signed: most positive first; abs; positive); the ranking is recorded with every result."
    ),
    epilog="Example: igcli evaluate out-ig out-idgi --metric insertion,deletion --rank abs --csv scores.csv",
)
@c.handle_errors
def evaluate_command(
    sources: Annotated[List[Path], typer.Argument(help="igcli output folders (or index.h5 / shard files).",
                                                  show_default=False, metavar="OUT")],
    metric: Annotated[str, typer.Option("--metric", help="Comma-separated: insertion, deletion, abpc, sic, aic, "
                      "sic-msssim, aic-msssim, sensitivity, jpeg-stability, closed-path, localization, completeness.")] = "insertion,deletion",
    rank: Annotated[str, typer.Option("--rank", help="Pixel ranking: signed (most positive first), abs or "
                    "positive.")] = "signed",
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model to score with [default: the one "
                     "named in the shards].", show_default=False)] = None,
    weights: c.WeightsOption = None,
    trust_model_file: c.TrustModelFileOption = False,
    masks: Annotated[Optional[Path], typer.Option("--masks", help="Folder of ground-truth PNG masks (nonzero = "
                     "object) named like the inputs, for localization.", metavar="DIR")] = None,
    boxes: Annotated[Optional[Path], typer.Option("--boxes", help="Bounding boxes for localization: a CSV of "
                     "path,xmin,ymin,xmax,ymax or a folder of Pascal VOC XML files.", metavar="PATH")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Evaluate only the first N rows.")] = None,
    root: Annotated[Optional[Path], typer.Option("--root", help="The input images moved: the folder that now "
                    "holds what the folder given to igcli attribute held; images are looked up by their path "
                    "below it.", show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1, help="Seed of SIC/AIC's random 1% of "
                    "revealed pixels (per image from seed and path).")] = 0,
    min_pred: Annotated[Optional[float], typer.Option("--min-pred", min=0.0, max=1.0, metavar="P", help="SIC/AIC: "
                        "leave unscored an image whose original the model scores below P (PAIR's min_pred_value, "
                        "0.8 there) [default: off, as the IDGI paper].", show_default=False)] = None,
    batch_size: c.BatchSizeOption = None,
    device: c.DeviceOption = None,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Also write per-image values to this CSV.",
                    metavar="FILE")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Draw the aggregate curves (insertion, deletion, "
                    "SIC/AIC) of every output to this PNG.", metavar="FILE")] = None,
    quiet: c.QuietOption = False,
    json_summary: c.JsonOption = False,
) -> None:
    from ..jobs.evaluate import EvaluateJob, evaluate
    from ..jobs.evaluate_results import write_csv
    from ..metrics.catalog import parse_metrics

    metrics = parse_metrics(metric)
    results = []
    for source in sources:
        job = EvaluateJob(source, metrics, rank=rank, model=model, weights=str(weights) if weights else None,
                          masks=str(masks) if masks else None, boxes=str(boxes) if boxes else None,
                          batch_size=batch_size, device=device, limit=limit, seed=seed,
                          trust_model_file=trust_model_file, root=root, min_pred=min_pred)
        results.append(evaluate(job,
                                quiet=quiet))
    if csv_path is not None:
        write_csv(results, csv_path)
    if plot is not None:
        from ..figures import plot_metric_curves

        curves = {f"{Path(r.source).name} ({r.recipe.short_name})": r.aggregate_curves() for r in results}
        plot_metric_curves(plot, curves, title=f"igcli evaluate, rank {rank}")
    c.commit_outcome()  # the results are final: a later signal must not turn them into an interrupt
    if json_summary:
        c.print_json({"results": [r.as_dict() for r in results]})
    else:
        _print_table(results)
    if any(r.skipped for r in results):
        raise typer.Exit(5)


def _print_table(results) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..metrics.directions import better_mark

    table = Table(title=f"igcli evaluate (rank: {results[0].rank}; mean over images, median in brackets; SIC/AIC: "
                        "area under the aggregate curve)")
    table.add_column("value")
    table.add_column("better")
    for result in results:
        table.add_column(f"{Path(result.source).name}\n{result.recipe.short_name}", justify="right")
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
    Console(file=c.data_stream()).print(table)

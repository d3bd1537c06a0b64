"""The metric registry: every metric ``igcli evaluate`` knows, in the order the help and the table list them.

A metric is a :class:`~igcli.metrics.base.Metric` in its family's file and one line in ``_ENTRIES`` here. The
CLI's ``--metric`` choices and help, the results table's "better" column, ``--json``'s ``higher_is_better``,
``igcli evaluate --list-metrics`` and the README read it. Entries are imported when first asked for, so
``igcli --help`` does not import torch.
"""

from __future__ import annotations

import difflib
import importlib
from functools import lru_cache
from typing import Any, Sequence

from ..errors import InvalidArgumentError
from .base import Metric

# name -> "module:attribute" of its Metric object (the module under igcli.metrics).
_ENTRIES = {
    "insertion": "perturbation:INSERTION",
    "deletion": "perturbation:DELETION",
    "abpc": "perturbation:ABPC",
    "road": "road:ROAD",
    "sic": "pic:SIC",
    "aic": "pic:AIC",
    "sic-msssim": "pic:SIC_MSSSIM",
    "aic-msssim": "pic:AIC_MSSSIM",
    "infidelity": "fidelity:INFIDELITY",
    "sensitivity": "max_sensitivity:SENSITIVITY",
    "jpeg-stability": "stability:JPEG_STABILITY",
    "mprt": "sanity:MPRT",
    "random-logit": "sanity:RANDOM_LOGIT",
    "closed-path": "stability:CLOSED_PATH",
    "completeness": "completeness:COMPLETENESS",
    "localization": "localization:LOCALIZATION",
    "pointing-game": "truth_overlap:POINTING_GAME",
    "relevance-mass": "truth_overlap:RELEVANCE_MASS",
    "relevance-rank": "truth_overlap:RELEVANCE_RANK",
    "gini": "complexity:GINI",
    "entropy": "complexity:ENTROPY",
}
METRICS = tuple(_ENTRIES)


@lru_cache(maxsize=None)
def get_metric(name: str) -> Metric:
    """The registered metric ``name``; InvalidArgumentError with the close matches otherwise."""
    if name not in _ENTRIES:
        close = difflib.get_close_matches(name, METRICS, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; choose from {', '.join(METRICS)}"
        raise InvalidArgumentError(f"--metric {name!r}: no such metric{hint}")
    module, attribute = _ENTRIES[name].split(":")
    metric = getattr(importlib.import_module(f"{__package__}.{module}"), attribute)
    if metric.name != name:  # a registry line pointing at the wrong object
        raise RuntimeError(f"igcli.metrics.catalog: {name} names the metric {metric.name}")
    return metric


def all_metrics() -> list[Metric]:
    return [get_metric(name) for name in METRICS]


def parse_metrics(text: str | Sequence[str]) -> list[str]:
    """``--metric``: comma-separated names (or a sequence), each known, in order, without repeats."""
    names = [m.strip().lower() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    if not names:
        raise InvalidArgumentError(f"--metric {text!r}: name at least one of {', '.join(METRICS)}")
    for name in names:
        get_metric(name)
    return list(dict.fromkeys(names))


def parse_metric_options(items: Sequence[str] | dict[str, Any] | None, metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``-O METRIC.OPTION=VALUE`` items (or a {metric: {option: value}} dict) -> every metric of the run with its
    options resolved (defaults filled in, values converted and checked). An option of a metric not in the run
    is refused: it would be silently ignored."""
    given: dict[str, dict[str, Any]] = {}
    if isinstance(items, dict):
        given = {metric: dict(options) for metric, options in items.items()}
    else:
        for item in items or ():
            key, equals, value = item.partition("=")
            metric, dot, option = key.strip().partition(".")
            if not equals or not dot or not option:
                raise InvalidArgumentError(f"-O {item!r}: expected METRIC.OPTION=VALUE, e.g. sensitivity.radius=0.1")
            given.setdefault(metric.lower(), {})[option.strip()] = value.strip()
    for metric in given:
        get_metric(metric)
        if metric not in metrics:
            raise InvalidArgumentError(f"-O {metric}.{next(iter(given[metric]))}: {metric} is not among --metric "
                                       f"{','.join(metrics)}")
    return {name: get_metric(name).resolve_options(given.get(name, {})) for name in metrics}


def value_direction(value: str) -> bool:
    """Whether a higher ``value`` (a per-image value name) is better."""
    for metric in all_metrics():
        for entry in metric.values:
            if entry.name == value:
                return entry.higher_is_better
    raise KeyError(value)


def better_mark(value: str) -> str:
    """``↑ higher`` or ``↓ lower`` for a reported value, for tables."""
    return "↑ higher" if value_direction(value) else "↓ lower"


def list_metrics(pattern: str = "*") -> list[dict[str, Any]]:
    """Every metric whose name matches the glob ``pattern``, as a JSON-ready record: name, family, summary,
    reference, values (name, higher_is_better, help), needs, options (name, default, kind, help)."""
    import fnmatch

    records = []
    for metric in all_metrics():
        if not fnmatch.fnmatch(metric.name, pattern.lower()):
            continue
        needs = [need for need, flag in (("model", metric.needs_model), ("masks or boxes", metric.needs_truth),
                                         ("recomputed maps", metric.recomputes),
                                         ("a copy of the model", metric.needs_module),
                                         ("a ranking", metric.ranked)) if flag]
        records.append({
            "name": metric.name, "family": metric.family, "summary": metric.summary, "reference": metric.reference,
            "values": [{"name": v.name, "higher_is_better": v.higher_is_better, "help": v.help} for v in metric.values],
            "needs": needs,
            "options": [{"name": o.name, "default": o.default, "kind": o.kind.__name__, "help": o.help,
                         "choices": list(o.choices) if o.choices else None} for o in metric.options],
        })
    return records


README_BEGIN = "<!-- metrics: generated from igcli/metrics/catalog.py by python -m igcli.cli.docs -->"
README_END = "<!-- end of metrics -->"


def metrics_markdown() -> str:
    """The README's table of metrics (between :data:`README_BEGIN` and :data:`README_END`), from the registry."""
    lines = [README_BEGIN, "", "| metric | family | values (better) | needs | options (default) | reference |",
             "|---|---|---|---|---|---|"]
    for record in list_metrics():
        values = ", ".join(f"`{v['name']}` ({'↑' if v['higher_is_better'] else '↓'})" for v in record["values"])
        options = ", ".join(f"`{o['name']}`={o['default']}" for o in record["options"]) or "-"
        needs = ", ".join(need for need in record["needs"] if need != "a ranking") or "the maps only"
        lines.append(f"| `{record['name']}` | {record['family']} | {values} | {needs} | {options} | "
                     f"{record['reference']} |")
    return "\n".join([*lines, "", README_END])


def readme_with_metrics(text: str) -> str:
    """``text`` (the README) with its metrics table replaced by :func:`metrics_markdown`."""
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"README.md has no {README_BEGIN!r} ... {README_END!r} block")
    return text[:begin] + metrics_markdown() + text[end + len(README_END):]

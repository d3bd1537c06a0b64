"""igcli's jobs: what the subcommands do, as library calls.

- :mod:`~igcli.jobs.pipeline`: the one pipeline of a shard-writing job (inputs -> this part -> model ->
  batches -> the job's batch step -> shards -> index -> summary); :mod:`~igcli.jobs.output_folder`,
  :mod:`~igcli.jobs.streaming` and :mod:`~igcli.jobs.checks` (torch-free: refusals before the model loads)
  are its parts.
- :mod:`~igcli.jobs.attribute` and :mod:`~igcli.jobs.split`: batch steps on it.
- :mod:`~igcli.jobs.calibrate`: streams a sample of the images to RiemannOpt and writes a schedule file.
- :mod:`~igcli.jobs.evaluate`: streams the rows of saved shards through the metrics.

Names are imported lazily, so the CLI can use the checks without importing torch.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "AttributeJob": "checks",
    "check_attribute_job": "checks",
    "AttributeSummary": "pipeline",
    "run_attribute": "attribute",
    "SplitJob": "split",
    "run_split": "split",
    "summarize_split": "split",
    "CalibrateJob": "calibrate",
    "run_calibrate": "calibrate",
    "EvaluateJob": "evaluate",
    "EvaluateResult": "evaluate",
    "evaluate": "evaluate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""igcli's jobs: what the subcommands do, as library calls.

- :mod:`~igcli.jobs.pipeline`: the one pipeline every job runs on (open: inputs, this part, the model ->
  batches through the job's step, with progress and signals -> close -> finish -> summary).
- :mod:`~igcli.jobs.sharded`: shard-writing jobs on it (parts, locks, ``--resume``, shards, the index), with
  :mod:`~igcli.jobs.output_folder`, :mod:`~igcli.jobs.streaming` and :mod:`~igcli.jobs.checks` (torch-free:
  refusals before the model loads); :mod:`~igcli.jobs.attribute` and :mod:`~igcli.jobs.split` are batch steps.
- :mod:`~igcli.jobs.calibrate`: a sample of the images through RiemannOpt's probe, then a schedule file.
- :mod:`~igcli.jobs.evaluate`: the rows of saved shards through the metrics (:mod:`~igcli.jobs.evaluate_results`).

Names are imported lazily, so the CLI can use the checks without importing torch.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "AttributeJob": "checks",
    "check_attribute_job": "checks",
    "AttributeSummary": "sharded",
    "run_attribute": "attribute",
    "SplitJob": "split",
    "run_split": "split",
    "summarize_split": "split",
    "CalibrateJob": "calibrate",
    "run_calibrate": "calibrate",
    "EvaluateJob": "evaluate",
    "EvaluateResult": "evaluate_results",
    "run_evaluate": "evaluate",  # the job function evaluate.evaluate, named like the other jobs' runners
}
# ``igcli.jobs.evaluate`` is also the name of the module: once anything imports it, Python binds the package's
# attribute to the module, so the function is exported as run_evaluate.
_ATTRIBUTES = {"run_evaluate": "evaluate"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), _ATTRIBUTES.get(name, name))
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

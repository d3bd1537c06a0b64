"""igcli: Integrated-Gradients-family saliency maps for image classifiers, in batch.

>>> import igcli
>>> result = igcli.attribute(model, images, method="ig", rule="idgi", steps=32)
>>> result.attributions.shape   # (B, C, H, W)

Attributes are imported lazily so that ``igcli --help`` does not pay for importing torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "attribute": "igcli.api",
    "AttributionResult": "igcli.api",
    "METHOD_NAMES": "igcli.methods",
    "Method": "igcli.methods",
    "Option": "igcli.methods",
    "get_method": "igcli.methods",
    "method_names": "igcli.methods",
    "list_methods": "igcli.methods.listing",
    "describe": "igcli.api",
    "AttributeJob": "igcli.jobs",
    "run_attribute": "igcli.jobs",
    "Output": "igcli.output",
    "load_model": "igcli.models",
    "split": "igcli.split",
    "SplitResult": "igcli.split",
    "probe_derivative": "igcli.calibrate",
    "optimize_partition": "igcli.calibrate",
    "Schedule": "igcli.schedules",
    "make_schedule": "igcli.schedules",
    "Normalization": "igcli.baselines",
    "make_baseline": "igcli.baselines",
    "IgcliError": "igcli.errors",
    "InvalidArgumentError": "igcli.errors",
    "ShapeError": "igcli.errors",
    "TargetError": "igcli.errors",
    "NonFiniteError": "igcli.errors",
    "CompletenessWarning": "igcli.completeness",
    "OutputError": "igcli.validate",
    "DamagedShardError": "igcli.validate",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'igcli' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API too (lazy attributes are not in globals() until used), for tab completion."""
    return sorted(set(globals()) | set(__all__))

"""Ensembles over any method: noise (SmoothGrad, SmoothGrad-squared, VarGrad) and baselines (several listed,
or references drawn per image), with a per-image error bar (:mod:`igcli.ensembles.run`)."""

from .aggregates import NOISE_AGGREGATE_NAMES, NOISE_AGGREGATES, NoiseAggregate
from .spec import DEFAULT_NOISE_AGGREGATE, DEFAULT_NOISE_LEVEL, EnsembleSpec, check_ensemble

__all__ = ["DEFAULT_NOISE_AGGREGATE", "DEFAULT_NOISE_LEVEL", "EnsembleMaps", "EnsembleSpec", "FolderReferences",
           "NOISE_AGGREGATES", "NOISE_AGGREGATE_NAMES", "NoiseAggregate", "ReferenceSource", "TensorReferences",
           "attribute_ensemble", "check_ensemble"]


def __getattr__(name: str):  # the torch parts load when used: the CLI checks names before torch is imported
    if name in ("EnsembleMaps", "attribute_ensemble"):
        from . import run

        return getattr(run, name)
    if name in ("FolderReferences", "ReferenceSource", "TensorReferences"):
        from . import references

        return getattr(references, name)
    raise AttributeError(name)

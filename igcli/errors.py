"""The exceptions igcli raises, each mapped to a documented process exit code.

Library users catch :class:`IgcliError` (or a subclass); the CLI turns each into one line on stderr and the
exit code in :data:`EXIT_CODES`.
"""

from __future__ import annotations


class IgcliError(Exception):
    """Base class of every error igcli raises on purpose. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class InvalidArgumentError(IgcliError, ValueError):
    """An argument or option has a value igcli does not accept (unknown name, out of range, wrong type)."""

    exit_code = 2


class ShapeError(InvalidArgumentError):
    """A tensor (images, baseline, targets, model output) has the wrong shape."""


class TargetError(InvalidArgumentError):
    """A target class index is outside the model's classes."""


class NonFiniteError(IgcliError, ArithmeticError):
    """NaN or infinity in the inputs, the model's outputs or its gradients."""

    exit_code = 3


class PluginError(IgcliError):
    """A method from a plugin package failed inside its own code (the package is named: report it there)."""

    exit_code = 1


EXIT_CODES = {
    0: "success",
    1: "an igcli error not covered below, or a method plugin that failed in its own code (the package is named)",
    2: "invalid argument or input (unknown option, missing argument, bad option value, unknown name, unreadable "
       "labels, baseline or schedule file, wrong shape, target out of range)",
    3: "NaN or infinity in inputs, model outputs or gradients",
    4: "the model could not be loaded (unknown name, bad file, weights missing or not matching, a pickled module "
       "without --trust-model-file, or a model file named only by an output folder)",
    5: "finished, but some inputs were skipped (each listed on stderr and in the output's skipped records)",
    6: "the output folder cannot be used (not empty without --resume/--overwrite, another run's settings, another "
       "run writing the same part, unwritable or full, a damaged or foreign shard)",
    130: "interrupted (SIGINT); finished shards are kept and the open one completed: rerun with --resume",
    143: "terminated (SIGTERM, e.g. a SLURM time limit); as for 130",
}


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, for a one-line error (its type's name when it has none)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def brief(error: BaseException, limit: int = 300) -> str:
    """:func:`first_line`, cut to ``limit`` characters: for quoting an error igcli did not write (a plugin's, a
    model's) inside one line of its own."""
    text = first_line(error)
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."

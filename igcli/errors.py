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


EXIT_CODES = {
    0: "success",
    1: "an igcli error not covered below",
    2: "invalid argument or input (bad option value, unknown name, wrong shape, target out of range)",
    3: "NaN or infinity in inputs, model outputs or gradients",
}

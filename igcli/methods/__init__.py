"""Methods, rules and outputs: the registry every consumer reads (library, CLI, calibrate, evaluate, docs).

One file per method (:mod:`igcli.methods.ig`, ...), each a :class:`Method` declaring its options with their
defaults and checks, whether it takes a baseline, whether it can be calibrated and how it walks its path.
Plugins add methods through the entry-point group ``igcli.methods`` (:mod:`igcli.methods.registry`).

Torch-free, so that ``igcli attribute`` can refuse a contradictory combination (``--method vg --rule idgi``)
before it imports torch or loads a model.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidArgumentError
from .base import Method, Option
from .registry import ALIASES, BUILT_IN, ENTRY_POINT_GROUP, get_method, method_names, plugin_faults, refresh

METHOD_NAMES = tuple(BUILT_IN)  # the built-in methods; method_names() adds installed plugins
RULE_NAMES = ("riemann", "idgi")
OUTPUTS = ("prob", "logit")
BASELINE_NAMES = ("black", "white", "blur", "uniform")  # or a file/tensor

__all__ = ["ALIASES", "as_method", "BASELINE_NAMES", "ENTRY_POINT_GROUP", "METHOD_NAMES", "Method", "OUTPUTS", "Option",
           "RULE_NAMES", "check_method", "get_method", "method_names", "refresh", "resolve_method",
           "resolve_options"]


def as_method(method: str | Method) -> Method:
    """The :class:`Method` for a name (an alias gives its method) or the object itself, registered or not."""
    if isinstance(method, Method):
        return method
    return get_method(ALIASES.get(method.strip().lower(), (method,))[0] if isinstance(method, str) else method)


def resolve_method(method: str | Method, rule: str) -> tuple[str, str]:
    """(method name, rule): ``idgi`` is short for ``ig`` with rule ``idgi``; a method without a path (``vg``)
    takes no path rule. ``method``: a registered name or a :class:`Method` object."""
    if isinstance(method, Method):
        if not method.has_path and rule == "idgi":
            raise InvalidArgumentError(f"rule idgi integrates along a path; {method.name} has none")
        return method.name, rule
    if not isinstance(method, str):
        raise InvalidArgumentError(f"method must be a string, got {method!r}")
    name = method.strip().lower()
    if name in ALIASES:
        target, implied = ALIASES[name]
        if rule not in ("riemann", implied):
            raise InvalidArgumentError(f"method {name!r} means {target} with rule {implied}; rule {rule!r} contradicts it")
        return target, implied
    resolved = get_method(name)
    if not resolved.has_path and rule == "idgi":
        raise InvalidArgumentError(f"rule idgi integrates along a path; {resolved.name} has none "
                                   f"(use {', '.join(n for n in METHOD_NAMES if BUILT_IN[n].has_path)})")
    return resolved.name, rule


def resolve_options(method: str | Method, given: dict[str, Any]) -> dict[str, Any]:
    """``method``'s options: its defaults updated with ``given``, each checked; unknown names refused."""
    chosen = as_method(method)
    with plugin_faults(chosen):  # a plugin's own checks run here
        return chosen.resolve_options(given)


def check_method(method: str | Method, rule: str, output: str, options: dict[str, Any]
                 ) -> tuple[str, str, dict[str, Any]]:
    """(method name, rule, options with defaults) after every check that needs no schedule;
    InvalidArgumentError names the first problem."""
    name, rule = resolve_method(method, rule)
    options = resolve_options(method if isinstance(method, Method) else name, options)
    method = name
    if rule not in RULE_NAMES:
        raise InvalidArgumentError(f"unknown rule {rule!r}; choose from {', '.join(RULE_NAMES)}")
    if output not in OUTPUTS:
        raise InvalidArgumentError(f"unknown output {output!r}; choose from {', '.join(OUTPUTS)}")
    return method, rule, options

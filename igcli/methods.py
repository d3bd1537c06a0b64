"""Method, rule and output names, each method's options with defaults, and the checks on them.

Torch-free, so that ``igcli attribute`` can refuse a contradictory combination (``--method vg --rule idgi``)
before it imports torch or loads a model.
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidArgumentError

METHOD_NAMES = ("vg", "ig", "blurig", "gig")
RULE_NAMES = ("riemann", "idgi")
OUTPUTS = ("prob", "logit")
BASELINE_NAMES = ("black", "white", "blur", "uniform")  # or a file/tensor

# Options each method accepts, with defaults (PAIR's reference values: max_sigma 50, fraction 0.25,
# max_dist 0.02; Kapishnikov et al. 2021, §4.3 for anchors).
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "vg": {},
    "ig": {"baseline_sigma": 50.0},
    "blurig": {"max_sigma": 50.0, "blur_padding": "reflect", "blur_derivative": "exact"},
    "gig": {"fraction": 0.25, "max_dist": 0.02, "anchors": 0, "baseline_sigma": 50.0},
}


def resolve_method(method: str, rule: str) -> tuple[str, str]:
    """(path method, rule): ``idgi`` is short for ``ig`` with rule ``idgi``; ``vg`` takes no path rule."""
    if not isinstance(method, str):
        raise InvalidArgumentError(f"method must be a string, got {method!r}")
    name = method.strip().lower()
    if name == "idgi":
        if rule not in ("riemann", "idgi"):
            raise InvalidArgumentError(f"method 'idgi' means ig with rule idgi; rule {rule!r} contradicts it")
        return "ig", "idgi"
    if name not in METHOD_NAMES:
        raise InvalidArgumentError(f"unknown method {method!r}; choose from {', '.join(METHOD_NAMES)} or idgi")
    if name == "vg" and rule == "idgi":
        raise InvalidArgumentError("rule idgi integrates along a path; vg has none (use ig, blurig or gig)")
    return name, rule


def resolve_options(method: str, given: dict[str, Any]) -> dict[str, Any]:
    """``method``'s options: its defaults updated with ``given``, each checked; unknown names refused."""
    allowed = METHOD_OPTIONS[method]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        valid = ", ".join(sorted(allowed)) or "none"
        raise InvalidArgumentError(f"option(s) {', '.join(unknown)} do not apply to method {method}; it takes: {valid}")
    options = {**allowed, **given}
    if method == "gig":
        if not (0 < float(options["fraction"]) <= 1):
            raise InvalidArgumentError(f"fraction must be in (0, 1], got {options['fraction']!r}")
        if not (0 <= float(options["max_dist"]) <= 1):
            raise InvalidArgumentError(f"max_dist must be in [0, 1], got {options['max_dist']!r}")
        anchors = options["anchors"]
        if not isinstance(anchors, int) or isinstance(anchors, bool) or anchors < 0:
            raise InvalidArgumentError(f"anchors must be an integer >= 0, got {anchors!r}")
        options["fraction"], options["max_dist"] = float(options["fraction"]), float(options["max_dist"])
    if method == "blurig" and not (float(options["max_sigma"]) > 0):
        raise InvalidArgumentError(f"max_sigma must be > 0 pixels, got {options['max_sigma']!r}")
    if "baseline_sigma" in options and not (float(options["baseline_sigma"]) > 0):
        raise InvalidArgumentError(f"baseline_sigma must be > 0 pixels, got {options['baseline_sigma']!r}")
    return options


def check_method(method: str, rule: str, output: str, options: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(method, rule, options with defaults) after every check that needs no schedule; InvalidArgumentError
    names the first problem."""
    method, rule = resolve_method(method, rule)
    options = resolve_options(method, options)
    if rule not in RULE_NAMES:
        raise InvalidArgumentError(f"unknown rule {rule!r}; choose from {', '.join(RULE_NAMES)}")
    if output not in OUTPUTS:
        raise InvalidArgumentError(f"unknown output {output!r}; choose from {', '.join(OUTPUTS)}")
    return method, rule, options


def method_names() -> tuple[str, ...]:
    """Every method's name (built-in and plugins), as ``--method`` accepts it (``idgi`` aside, an alias)."""
    return METHOD_NAMES

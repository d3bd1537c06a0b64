"""What methods exist and what they take, for ``igcli methods`` and notebooks: ``igcli.list_methods("*ig")``.

Listing imports the plugins (it is asked to describe them); a plugin that cannot be loaded is listed with the
reason instead of its description.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from ..errors import InvalidArgumentError
from .registry import ALIASES, BUILT_IN, get_method, method_names


def list_methods(pattern: str = "*") -> list[dict[str, Any]]:
    """One JSON-ready record per method whose name matches the glob ``pattern`` (in any case) (built-in first, then
    plugins, then aliases): ``name``, ``title``, ``summary``, ``reference``, ``origin`` (``built-in``,
    ``plugin`` or ``alias``), ``path``, ``takes_baseline``, ``calibratable``, ``options`` (name, kind,
    default, help, choices) and, for a plugin that cannot be loaded, ``error``."""
    records: list[dict[str, Any]] = []
    pattern = pattern.lower()  # names are lower case and --method takes any case: so does the pattern
    for name in method_names():
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        origin = "built-in" if name in BUILT_IN else "plugin"
        try:
            method = get_method(name)
        except InvalidArgumentError as error:
            records.append({"name": name, "origin": origin, "error": str(error)})
            continue
        records.append({
            "name": name, "title": method.title, "summary": method.summary, "reference": method.reference,
            "origin": origin, "path": method.path, "takes_baseline": method.takes_baseline,
            "calibratable": method.calibratable,
            "options": [{"name": o.name, "kind": o.kind.__name__, "default": o.default, "help": o.help,
                         "choices": list(o.choices) if o.choices else None} for o in method.options],
        })
    for alias, (target, rule) in ALIASES.items():
        if fnmatch.fnmatchcase(alias, pattern):
            records.append({"name": alias, "origin": "alias", "summary": f"{target} with --rule {rule}",
                            "title": alias.upper(), "method": target, "rule": rule,
                            "reference": "Yang et al. 2023, Algorithm 1"})
    return records

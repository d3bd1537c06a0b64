"""The method registry: igcli's own methods and those of installed plugins.

A plugin is a package that declares, in its ``pyproject.toml``::

    [project.entry-points."igcli.methods"]
    meanig = "igcli_meanig:MeanColourIG"

The value is a :class:`~igcli.methods.base.Method` subclass (or instance) whose ``name`` is the entry point's
name. Names are listed from the installed packages' metadata without importing them, so ``igcli --help``
stays instant; a plugin's code is imported only when its method is used. A plugin cannot replace a built-in
method. Only packages installed in the environment can provide a method: an output folder naming a method
never imports anything else.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import os
import sys
import traceback
from functools import lru_cache
from typing import Iterator
from importlib import metadata

from ..errors import IgcliError, InvalidArgumentError, PluginError, brief
from .base import Method, declaration_problem
from .blurig import BlurIntegratedGradients
from .eg import ExpectedGradients
from .gig import GuidedIntegratedGradients
from .ig import IntegratedGradients
from .vg import VanillaGradient

ENTRY_POINT_GROUP = "igcli.methods"
BUILT_IN: dict[str, Method] = {m.name: m for m in (VanillaGradient(), IntegratedGradients(),
                                                    BlurIntegratedGradients(), GuidedIntegratedGradients(),
                                                    ExpectedGradients())}
ALIASES = {"idgi": ("ig", "idgi")}  # name -> (method, rule): the IDGI paper's own name for IG with its rule


@lru_cache(maxsize=None)
def _plugin_entry_points() -> dict[str, metadata.EntryPoint]:
    found: dict[str, metadata.EntryPoint] = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name not in BUILT_IN and entry.name not in ALIASES:
            found.setdefault(entry.name, entry)
    return found


def method_names() -> tuple[str, ...]:
    """Every method's name, built-in ones first, then installed plugins' (sorted); ``idgi`` (an alias of
    ``ig --rule idgi``) aside."""
    return tuple(BUILT_IN) + tuple(sorted(_plugin_entry_points()))


@lru_cache(maxsize=None)
def _load_plugin(name: str) -> Method:
    entry = _plugin_entry_points()[name]
    where = f"method {name} from {entry.value} (package {entry.dist.name if entry.dist else 'unknown'})"
    try:
        loaded = entry.load()
    except Exception as error:  # a broken plugin: one line naming it, whatever it raised
        raise InvalidArgumentError(f"{where}: cannot be loaded ({type(error).__name__}: {brief(error)}); reinstall or "
                                   "uninstall that package") from None
    method = loaded() if isinstance(loaded, type) and issubclass(loaded, Method) else loaded
    if not isinstance(method, Method):
        raise InvalidArgumentError(f"{where}: is a {type(loaded).__name__}, not an igcli.methods.Method subclass")
    if method.name != name:
        raise InvalidArgumentError(f"{where}: the class says its name is {method.name!r}; the two must agree")
    problem = declaration_problem(method)
    if problem:
        raise InvalidArgumentError(f"{where}: {problem}")
    PACKAGES[name] = entry.dist.name if entry.dist else entry.value
    return method


PACKAGES: dict[str, str] = {}  # plugin method name -> the package that provides it (once loaded)


@contextlib.contextmanager
def plugin_faults(method: Method) -> Iterator[None]:
    """Name a plugin's package when its method fails in its own code: :class:`~igcli.errors.PluginError` in
    one line (where it failed, what it raised) instead of a traceback through igcli. igcli's own methods, igcli's
    errors and interrupts, and a :class:`Method` object a caller made, pass through unchanged."""
    if method.name not in PACKAGES or method is not _load_plugin(method.name):  # igcli's own, or a caller's object
        yield
        return
    try:
        yield
    except (IgcliError, KeyboardInterrupt, MemoryError):
        raise
    except (Exception, SystemExit) as error:  # sys.exit() in a plugin would end igcli silently, exit 0 and all
        frames = [f for f in traceback.extract_tb(error.__traceback__) if _is_plugin_file(f.filename, method)]
        if not frames:  # raised elsewhere (the model, torch) while the method ran: not the plugin's fault to name
            raise
        where = f" at {frames[-1].filename}:{frames[-1].lineno}"
        package = PACKAGES.get(method.name, "unknown")
        raise PluginError(f"method {method.name} from package {package} failed{where}: {type(error).__name__}: "
                          f"{brief(error)}; report it to that package's authors").with_traceback(None) from error


def _plugin_files(method: Method) -> tuple[tuple[str, ...], str | None]:
    """(folder prefixes, module file) of the plugin package that defines ``method``'s class: its top-level
    package's folders (each ending in a separator, so ``igcli_x`` does not claim ``igcli_xy``), or, for a
    single-module plugin, that one file (never its folder: that is site-packages, torch's and the model's too)."""
    top = sys.modules.get(type(method).__module__.partition(".")[0])
    folders = getattr(top, "__path__", None)
    if folders is not None:
        return tuple(os.path.join(os.path.abspath(folder), "") for folder in folders), None
    return (), os.path.abspath(inspect.getfile(type(method)))


def _is_plugin_file(filename: str, method: Method) -> bool:
    """Whether a traceback frame's ``filename`` is the plugin's own code."""
    prefixes, module_file = _plugin_files(method)
    filename = os.path.abspath(filename)
    return filename == module_file or filename.startswith(prefixes)


def refresh() -> None:
    """Forget the plugins found so far, so that packages installed (or put on ``sys.path``) since are seen;
    igcli itself never needs it (one process, one environment)."""
    _load_plugin.cache_clear()
    _plugin_entry_points.cache_clear()
    PACKAGES.clear()


def get_method(name: str) -> Method:
    """The method called ``name`` (built-in or plugin); InvalidArgumentError with the closest names otherwise."""
    if not isinstance(name, str):
        raise InvalidArgumentError(f"method must be a string, got {name!r}")
    key = name.strip().lower()
    if key in BUILT_IN:
        return BUILT_IN[key]
    if key in _plugin_entry_points():
        return _load_plugin(key)
    known = [*method_names(), *ALIASES]
    close = difflib.get_close_matches(key, known, n=2, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise InvalidArgumentError(f"unknown method {name!r}; {hint}choose from {', '.join(known)}")

"""How ``--help`` shows igcli's commands: help text as written, and metavars for people.

Typer renders help through Rich in "rich" markup mode, where ``[default: 32]`` or ``[alpha*, 1]`` in a help
string is read as a style tag and silently dropped. :func:`prepare` escapes every help text of a Click command
tree once, so any text shows as written while the Rich panels stay. It also gives parameters metavars a reader
expects (``IMAGES...``, ``N``, ``[vg|ig]``, nothing on flags) instead of Typer's type hints (``<bool>``,
``<list[str]>``, ``{inputs}...``). The man page uses :func:`metavar` and :func:`argument_usage` too.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from rich.markup import escape
from typer.core import TyperArgument, TyperOption


def choices(param: Any) -> tuple[str, ...] | None:
    """The values a choice parameter accepts, as typed on the command line; None for other parameters."""
    desc = getattr(param, "type_descriptor", None)
    if desc is None or not desc.is_choice:
        return None
    return tuple(str(choice.value) if isinstance(choice, Enum) else str(choice) for choice in desc.choices or ())


def is_flag(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "option" and bool(
        getattr(param, "is_flag", False) or getattr(param, "count", False))


def metavar(param: Any) -> str | None:
    """What stands for a parameter's value: its own metavar, ``[a|b]`` for choices, ``N`` for integers, else the
    upper-case long name (``--out`` -> ``OUT``); None for flags, which take no value."""
    if is_flag(param):
        return None
    if param.metavar:
        return str(param.metavar)
    values = choices(param)
    if values is not None:
        return "[" + "|".join(values) + "]"
    if getattr(param, "param_type_name", "") == "argument":
        return str(param.name).upper()
    desc = getattr(param, "type_descriptor", None)
    if desc is not None and desc.annotation is int:
        return "N"
    longs = [opt for opt in param.opts if opt.startswith("--")] or list(param.opts)
    return longs[0].lstrip("-").replace("-", "_").upper()


def argument_name(argument: Any) -> str:
    """``IMAGES...`` for an argument taking any number of values, ``OUT`` for one value."""
    name = str(argument.metavar or argument.name.upper()).rstrip(".")
    return name + ("..." if argument.nargs != 1 else "")


def argument_usage(argument: Any) -> str:
    """An argument in a usage line, as Unix manuals write it: ``IMAGES...`` when required, else ``[OUT]``."""
    return argument_name(argument) if argument.required else f"[{argument_name(argument)}]"


class _Option(TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        shown = metavar(self)
        return shown + "..." if shown and self.nargs != 1 else shown


class _Argument(TyperArgument):
    # Typer 0.2x writes a required argument as {name} in the usage line and its type (<list[str]>) beside it.
    def _usage_display_name(self) -> str:
        return argument_usage(self)

    def display_type_rich(self, ctx: Any) -> str | None:
        values = choices(self)
        return "[" + "|".join(values) + "]" if values is not None else None


def prepare(command: Any, name: str = "igcli", parent: Any = None) -> Any:
    """Escape the help texts of ``command`` and all its subcommands for Rich markup and give their parameters
    igcli's metavars; returns ``command`` (changed in place)."""
    ctx = command.context_class(command, info_name=name, parent=parent, **(command.context_settings or {}))
    command.get_help_option(ctx)  # made now (Click keeps it), so that it is displayed like the other flags
    for attribute in ("help", "short_help", "epilog"):
        if getattr(command, attribute, None):
            setattr(command, attribute, escape(getattr(command, attribute)))
    for param in [*command.params, *filter(None, [command._help_option])]:
        if getattr(param, "help", None):
            param.help = escape(param.help)
        if isinstance(param, TyperArgument):
            param.metavar = argument_name(param)
            param.__class__ = _Argument  # same object and state; only how it is displayed changes
        elif isinstance(param, TyperOption):
            param.__class__ = _Option
    for child_name, child in getattr(command, "commands", {}).items():
        prepare(child, child_name, ctx)
    return command

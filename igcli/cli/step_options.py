"""``--steps`` (a count, or ``auto`` in ``igcli attribute``) and ``--steps auto``'s limits, shared by the commands
that walk a path."""

from __future__ import annotations

from typing import Annotated, Any, Callable, Optional

import typer

from .common import METHOD_PANEL


def _steps_parser(allow_auto: bool) -> Callable[[str], Any]:
    """``--steps``'s value: a positive integer, or (``allow_auto``) ``auto``; anything else is a usage error
    naming the option (``Invalid value for '--steps': ...``, exit 2)."""

    def parse(text: str) -> int | str:
        value = str(text).strip()
        if value.lower() == "auto":
            if allow_auto:
                return "auto"
            raise typer.BadParameter("auto chooses the points per image, only in igcli attribute; give a step count")
        if not value.isdigit() or int(value) < 1:
            raise typer.BadParameter(f"{text!r} is not a positive integer{' or auto' if allow_auto else ''}")
        return int(value)

    return parse


StepsOption = Annotated[Optional[str], typer.Option(
    "--steps", parser=_steps_parser(True), metavar="N|auto", help="Gradient evaluations along the path, or auto: "
    "per image, as few as keep the map's estimated relative error below --tolerance [default: 32, or the step "
    "count of a schedule file].", show_default=False, rich_help_panel=METHOD_PANEL)]
FixedStepsOption = Annotated[Optional[str], typer.Option(
    "--steps", parser=_steps_parser(False), metavar="N", help="Gradient evaluations along the path [default: 32, "
    "or the step count of a schedule file].", show_default=False, rich_help_panel=METHOD_PANEL)]
ToleranceOption = Annotated[Optional[float], typer.Option(
    "--tolerance", help="With --steps auto: the estimated relative L1 error of each map, and its completeness gap, "
    "to reach, 0 < T < 1 [default: 0.05].", show_default=False, rich_help_panel=METHOD_PANEL, metavar="T")]
MinStepsOption = Annotated[Optional[int], typer.Option(
    "--min-steps", help="With --steps auto: the first mesh's points per image, before any refinement [default: 8].",
    show_default=False, rich_help_panel=METHOD_PANEL, metavar="N")]
MaxStepsOption = Annotated[Optional[int], typer.Option(
    "--max-steps", help="With --steps auto: the most gradient evaluations per image; an image that has not met "
    "--tolerance by then is stored as it is, marked tolerance_met 0 [default: 256].", show_default=False,
    rich_help_panel=METHOD_PANEL, metavar="M")]

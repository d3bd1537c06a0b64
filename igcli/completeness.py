"""Is the path integral fine enough? Completeness (Sundararajan et al. 2017 §3): the attributions of a path
method sum to f(x) - f(x'), and the paper advises checking that they do within 5%, taking more steps when not.

:class:`GapTally` collects the per-map relative gaps |sum(attr) - (f(x) - f(x'))| / |f(x) - f(x')| of a run
(or of one :func:`igcli.attribute` call) and says in one line each what is wrong: a median gap above 5%, and
maps that explain no change at all (f(x) = f(x'), gap undefined, or an all-zero map, gap exactly 1), which
more steps would not fix.
"""

from __future__ import annotations

import numpy as np

GAP_TOLERANCE = 0.05  # Sundararajan et al. 2017 §3: "within 5%"


class CompletenessWarning(UserWarning):
    """:func:`igcli.attribute`'s maps miss completeness: median gap above 5%, or maps that explain no change."""

def _either(options: list[str]) -> str:
    return options[0] if len(options) == 1 else f"{', '.join(options[:-1])}, or {options[-1]}"


def gap_hint(*, cli: bool = True, schedule: str = "right") -> str:
    """What to do about a coarse path integral, for the run's ``schedule``: a schedule name, ``calibrated``
    (``--schedule auto`` or a schedule file), ``custom`` (alphas given) or ``auto`` (``--steps auto``);
    ``cli`` words it as options, else as :func:`igcli.attribute` arguments. Nothing already in use is suggested."""
    if schedule == "auto":  # the points are the run's own: only a tighter target or a higher cap helps
        return ("use a smaller --tolerance or a larger --max-steps" if cli
                else "use a smaller tolerance or a larger max_steps")
    options = ["more --steps" if cli else "more steps"]
    if schedule == "calibrated":  # a calibration is for one step count: more steps need another one
        options[0] += " (igcli calibrate for that count first)"
    if schedule != "gauss-legendre":
        options.append("--schedule gauss-legendre" if cli else "schedule='gauss-legendre'")
    if schedule not in ("calibrated", "custom"):
        options.append("igcli calibrate and --schedule auto" if cli else "a calibrated schedule (igcli calibrate)")
    return f"use {_either(options)}"


class GapTally:
    """Completeness gaps seen so far; :meth:`messages` words the warnings (none when all is well)."""

    def __init__(self) -> None:
        self.maps = 0
        self.constant = 0  # maps explaining no change: f(x) = f(x') or all zero
        self._gaps: list[np.ndarray] = []

    def add(self, gaps: np.ndarray) -> None:
        """Count a batch's gaps: (B,) floats, NaN where f(x) = f(x'), 1.0 exactly for an all-zero map."""
        gaps = np.asarray(gaps, dtype=np.float64).reshape(-1)
        constant = ~np.isfinite(gaps) | (gaps == 1.0)
        self.maps += gaps.size
        self.constant += int(constant.sum())
        self._gaps.append(gaps[~constant])

    def messages(self, *, cli: bool = True, output: str = "prob", schedule: str = "right") -> list[str]:
        """``warning: ...`` lines: a median gap above :data:`GAP_TOLERANCE` (with how many maps exceed it), and
        the maps that explain no change, named apart since more steps would not help them. The advice fits the
        run: its ``output`` (prob or logit) and ``schedule`` (see :func:`gap_hint`); ``cli`` words it as
        options, else as :func:`igcli.attribute` arguments."""
        lines = []
        gaps = np.concatenate(self._gaps) if self._gaps else np.zeros(0)
        if gaps.size and float(np.median(gaps)) > GAP_TOLERANCE:
            large = int((gaps > GAP_TOLERANCE).sum())
            lines.append(
                f"warning: completeness gap above {GAP_TOLERANCE:.0%} for {large} of {gaps.size} maps (median "
                f"{float(np.median(gaps)):.1%}): their sums miss f(x) - f(baseline), the path integral is too coarse; "
                f"{gap_hint(cli=cli, schedule=schedule)}"
            )
        if self.constant:
            lines.append(
                f"warning: {self.constant} of {self.maps} maps explain no change: f(x) = f(baseline) or an all-zero "
                "map (the score does not move along the path, e.g. a saturated softmax); more steps will not help, "
                + ("try another baseline" if output == "logit" else
                   f"try {'--output logit' if cli else 'the logit output'} or another baseline")
            )
        return lines

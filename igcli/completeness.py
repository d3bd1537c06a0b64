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

CLI_HINT = "use more --steps, --schedule gauss-legendre, or igcli calibrate and --schedule auto"
LIBRARY_HINT = "use more steps, schedule='gauss-legendre', or a calibrated schedule (igcli calibrate)"


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

    def messages(self, hint: str = CLI_HINT) -> list[str]:
        """``warning: ...`` lines: a median gap above :data:`GAP_TOLERANCE` (with how many maps exceed it), and
        the maps that explain no change, named apart since more steps would not help them."""
        lines = []
        gaps = np.concatenate(self._gaps) if self._gaps else np.zeros(0)
        if gaps.size and float(np.median(gaps)) > GAP_TOLERANCE:
            large = int((gaps > GAP_TOLERANCE).sum())
            lines.append(
                f"warning: completeness gap above {GAP_TOLERANCE:.0%} for {large} of {gaps.size} maps (median "
                f"{float(np.median(gaps)):.1%}): their sums miss f(x) - f(baseline), the path integral is too coarse; "
                f"{hint}"
            )
        if self.constant:
            lines.append(
                f"warning: {self.constant} of {self.maps} maps explain no change: f(x) = f(baseline) or an all-zero "
                "map (the score does not move along the path, e.g. a saturated softmax); more steps will not help, "
                "try the logit output or another baseline"
            )
        return lines

"""Integration paths from a baseline (alpha = 0) to the input (alpha = 1).

Fixed paths (:class:`StraightPath`, :class:`BlurPath`) give gamma(alpha) and d gamma / d alpha for any
(image, alpha) rows at once, so their sample points can be batched freely. Guided IG's path depends on the
gradients met along the way; :mod:`igcli.paths.guided` advances a whole batch one step at a time.
"""

from .blur import BlurPath, gaussian_blur
from .straight import StraightPath

__all__ = ["BlurPath", "StraightPath", "gaussian_blur"]

"""ROAD: RemOve And Debias (Rong, Leemann, Borisov, Kasneci and Kasneci 2022, "A Consistent and Efficient
Evaluation Strategy for Attribution Methods", ICML, §4).

Removing pixels by setting them to a constant leaks the removal mask's shape to the model (class information
the paper measures, §3); ROAD replaces the removed pixels by a *noisy linear imputation* instead (§4.2): each
removed pixel equals the weighted mean of its 8 neighbours (direct neighbours weight 1/6, diagonal ones 1/12,
neighbours outside the image left out and the weights renormalised), known pixels fixed, every channel
separately; then Gaussian noise of std sigma is added to the imputed pixels only. The imputed values solve one
sparse linear system per image and removal set (the discrete weighted Laplace equation with the known pixels
as Dirichlet values).

- MoRF: remove the floor(p/100 H W) most relevant pixels (highest ``batch.scores``); LeRF: the same number of
  least relevant ones, for every percentage p (default 1, 3, ..., 99: Quantus' default grid). Counts use
  ``int(H W p / 100)`` as Quantus and the authors' code do; ties in the scores are broken by pixel index
  (:mod:`igcli.metrics.ranking`), where the authors add 1e-4 noise to the map and Quantus sorts unstably.
- Per image and percentage: the target's softmax probability and whether the model still predicts the target.
  Quantus' ``ROAD`` reports only the MoRF accuracy per percentage, averaged over images; the authors' code
  reports accuracy and mean probability, for MoRF and LeRF separately. Per image, accuracy is 0 or 1, so the
  headline values use the probability (the mean over the percentages: on the default uniform grid this is
  the midpoint-rule area under the curve over [0, 1]); the accuracy means are given beside them, and their
  mean over images equals the mean of Quantus' per-percentage accuracies.
  ``road_morf`` (lower is better), ``road_lerf`` (higher is better) and ``road = road_lerf - road_morf``
  (higher is better; one number for both orders, as ABPC is for zero-ablation (Miglani et al. 2020); the paper
  reports the two curves, and shows they rank methods consistently once the imputation is debiased, §5).
  The authors' LeRF at threshold p removes the *last* (1 - p) of the order; ours at p removes the least
  relevant p: the same curve mirrored, the same mean on a grid symmetric about 50.

Where igcli deliberately differs:
- Noise std ``noise`` (default 0.01, the paper's) is in [0, 1] pixel units, as the authors impute before
  normalising; igcli imputes model inputs, so the std per channel is noise / normalisation std. (Linear
  imputation commutes with the per-channel affine normalisation, its weights summing to 1, so only the noise
  needs the rescaling.) Quantus adds its noise in whatever space it is given, here model inputs. With
  noise 0 the two agree exactly.
- The systems are solved batched on ``batch.device`` for all images, percentages, orders and channels at once
  by Jacobi-preconditioned conjugate gradients (``solver=cg``), to a residual that puts the solution within
  ~1e-8 of the direct solve. Where the device is the CPU, ``solver=auto`` uses a sparse Cholesky
  factorisation per system instead (``solver=cholmod``: CHOLMOD through CVXOPT, a geometric nested-dissection
  order, the system assembled without Python loops over pixels, all channels one factorisation), which is
  faster there: CG needs O(hole diameter) sweeps over whole images. ``solver=direct`` is SciPy's SuperLU, as
  Quantus solves (2-3x slower than cholmod at 224 x 224; algebraic multigrid (pyamg) was slower still: its
  setup per system costs about one factorisation).
- Noise is drawn per image from a generator seeded by ``batch.seeds``, so results do not depend on batching.
"""

from __future__ import annotations

import contextlib
import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

from ..text import torch_seed
from ..engine import Engine
from ..errors import InvalidArgumentError
from .base import Metric, MetricBatch, MetricOption, MetricScores, Value
from .ranking import top_masks

DEFAULT_PERCENTAGES = "50"  # 50 evenly spaced midpoints: 1, 3, ..., 99 (Quantus' default)
DEFAULT_NOISE = 0.01  # Rong et al. 2022, §4.2 (and the authors' NoisyLinearImputer default)
SOLVERS = ("auto", "cg", "direct", "cholmod")
CG_TOLERANCE = 1e-9  # on max |r_i / D_i|: the solution within ~1e-8 of the direct solve at 224 x 224
CG_CHECK_EVERY = 16  # iterations between the host's looks at "all converged" (one device sync each)
PERMC_SPEC = "COLAMD"  # SuperLU's column ordering (SciPy's spsolve default, as Quantus uses)
MEMORY_BUDGET = 1 << 30  # bytes of float64 solver state per chunk of images

# (dy, dx) -> weight of the neighbour, Rong et al. 2022, §4.2 (the authors' ``neighbors_weights``).
NEIGHBOUR_WEIGHTS = (((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12),
                     ((0, -1), 1 / 6), ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6))


def parse_percentages(text: str | int) -> np.ndarray:
    """``percentages``: a count N (N evenly spaced midpoints (k + 1/2) 100 / N, k < N) or a comma list of
    percentages in (0, 100), increasing; float64 (P,). InvalidArgumentError otherwise."""
    text = str(text).strip()
    try:
        if "," not in text and text.isdigit():
            count = int(text)
            if count < 1:
                raise ValueError
            return (np.arange(count) + 0.5) * 100.0 / count
        values = np.array([float(part) for part in text.split(",") if part.strip()], dtype=np.float64)
    except ValueError:
        raise InvalidArgumentError(f"-O road.percentages: give a count (e.g. 50) or a comma list of percentages "
                                   f"in (0, 100), got {text!r}") from None
    if values.size == 0 or not np.all((values > 0) & (values < 100)) or np.any(np.diff(values) <= 0):
        raise InvalidArgumentError(f"-O road.percentages: percentages must be increasing and in (0, 100) (100 "
                                   f"would leave no pixel to impute from), got {text!r}")
    return values


def _check_percentages(text: str) -> str | None:
    try:
        parse_percentages(text)
    except InvalidArgumentError as error:
        return str(error).split(": ", 1)[1]
    return None


def removal_counts(percentages: np.ndarray, pixels: int) -> np.ndarray:
    """(P,) int64 pixels removed at each percentage: ``int(pixels * p / 100)``, Quantus' and the authors'
    count, computed in the same order of floating-point operations."""
    return np.array([int(pixels * p / 100) for p in percentages], dtype=np.int64)


def removal_masks(scores: torch.Tensor, percentages: np.ndarray, *, lerf: bool) -> torch.Tensor:
    """(B, P, H, W) bool, True where removed: the most relevant (MoRF) or least relevant (``lerf``) pixels of
    (B, H, W) ``scores``, :func:`removal_counts` of them per percentage, ties broken by pixel index."""
    pixels = scores.shape[1] * scores.shape[2]
    fractions = removal_counts(percentages, pixels) / pixels  # top_masks rounds f * H * W back to the count
    return top_masks(scores, fractions, from_bottom=lerf)


def _neighbour_sum(values: torch.Tensor) -> torch.Tensor:
    """sum_n w_n values[i + n] for (..., H, W) values, neighbours outside the image counting 0."""
    height, width = values.shape[-2:]
    padded = F.pad(values, (1, 1, 1, 1))
    total = torch.zeros_like(values)
    for (dy, dx), weight in NEIGHBOUR_WEIGHTS:
        total = total + weight * padded[..., 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]
    return total


def impute_cg(images: torch.Tensor, removed: torch.Tensor, *, tolerance: float = CG_TOLERANCE,
              max_iterations: int | None = None) -> torch.Tensor:
    """Linear imputation (noise-free) of (N, C, H, W) ``images`` where (N, H, W) ``removed``, by batched
    Jacobi-preconditioned conjugate gradients on ``images.device``; float64 (N, C, H, W).

    Each removed pixel i satisfies D_i x_i - sum_{n removed} w_n x_n = sum_{n known} w_n image_n, with D_i the
    sum of the weights of its neighbours inside the image: A = D - W restricted to the removed pixels is
    symmetric positive definite whenever a pixel is known (the 8-neighbour grid is connected), so CG
    converges. Every (row, channel) system stops by itself once max |r_i / D_i| <= ``tolerance`` (its
    iterates freeze), so a row's result does not depend on the other rows of the batch.
    """
    x0 = images.to(torch.float64)
    unknown = removed[:, None].to(torch.float64)
    known = 1.0 - unknown
    degree = _neighbour_sum(torch.ones_like(unknown))  # D: 1 inside, less on the border
    inverse = unknown / degree  # Jacobi preconditioner on the unknowns, 0 elsewhere

    def apply(z: torch.Tensor) -> torch.Tensor:
        return unknown * (degree * z - _neighbour_sum(unknown * z))

    residual = unknown * _neighbour_sum(x0 * known)  # b, with x = 0 on the unknowns to start
    solution = torch.zeros_like(x0)
    preconditioned = inverse * residual
    direction = preconditioned.clone()
    rz = (residual * preconditioned).sum((2, 3), keepdim=True)
    active = (inverse * residual).abs().amax((2, 3), keepdim=True) > tolerance
    limit = max_iterations if max_iterations is not None else 20 * (images.shape[-1] + images.shape[-2]) + 100
    for iteration in range(1, limit + 1):
        product = apply(direction)
        curvature = (direction * product).sum((2, 3), keepdim=True)
        alpha = torch.where(active & (curvature > 0), rz / curvature.clamp_min(1e-300), 0.0)
        solution = solution + alpha * direction
        residual = residual - alpha * product
        preconditioned = inverse * residual
        rz_next = (residual * preconditioned).sum((2, 3), keepdim=True)
        beta = torch.where(rz > 0, rz_next / rz.clamp_min(1e-300), 0.0)
        direction = torch.where(active, preconditioned + beta * direction, direction)
        rz = torch.where(active, rz_next, rz)
        active = active & ((inverse * residual).abs().amax((2, 3), keepdim=True) > tolerance)
        if iteration % CG_CHECK_EVERY == 0 and not bool(active.any()):  # one sync per CG_CHECK_EVERY sweeps
            break
    return x0 * known + solution * unknown


def impute_direct(images: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """:func:`impute_cg`'s result by a sparse direct solve per row on the host (SciPy SuperLU; the channels
    are the right-hand sides of one factorisation, as in Quantus); float64 (N, C, H, W) on the host."""
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import splu

    pixels = images.detach().to("cpu", torch.float64).numpy()
    masks = removed.detach().cpu().numpy()
    out = pixels.copy()
    count, channels, height, width = pixels.shape
    for row in range(count):  # one factorisation per system: a direct solver has no batch dimension
        unknowns = np.flatnonzero(masks[row].ravel())
        n = unknowns.size
        if n == 0:
            continue
        variable = np.full(height * width, -1)
        variable[unknowns] = np.arange(n)
        y, x = np.divmod(unknowns, width)
        flat = pixels[row].reshape(channels, -1)
        rows, cols, vals = [np.arange(n)], [np.arange(n)], []
        degree = np.zeros(n)
        rhs = np.zeros((n, channels))
        for (dy, dx), weight in NEIGHBOUR_WEIGHTS:
            ny, nx = y + dy, x + dx
            inside = np.flatnonzero((ny >= 0) & (ny < height) & (nx >= 0) & (nx < width))
            neighbour = ny[inside] * width + nx[inside]
            degree[inside] += weight
            free = variable[neighbour] >= 0
            rows.append(inside[free])
            cols.append(variable[neighbour[free]])
            vals.append(np.full(int(free.sum()), -weight))
            rhs[inside[~free]] += weight * flat[:, neighbour[~free]].T  # rows unique per offset
        matrix = csc_matrix((np.concatenate([degree, *vals]), (np.concatenate(rows), np.concatenate(cols))),
                            shape=(n, n))
        out[row].reshape(channels, -1)[:, unknowns] = splu(matrix, permc_spec=PERMC_SPEC).solve(rhs).T
    return torch.from_numpy(out)


@functools.lru_cache(maxsize=8)
def nested_dissection_rank(height: int, width: int, leaf: int = 64) -> np.ndarray:
    """(H W,) int64 position of each pixel in a geometric nested-dissection order of the H x W grid (George
    1973): split the longer side at its middle line, order both halves recursively, the line last. One line
    separates the 8-neighbour grid (|dy| = 2 across it), and it still separates any subset of pixels, so the
    order restricted to the removed pixels is a fill-reducing order for every system, found without a graph
    search (CHOLMOD's AMD took longer than the factorisation it orders)."""
    order: list[np.ndarray] = []
    grid = np.arange(height * width).reshape(height, width)

    def split(y0: int, y1: int, x0: int, x1: int) -> None:
        if (y1 - y0) * (x1 - x0) <= leaf:
            order.append(grid[y0:y1, x0:x1].ravel())
        elif y1 - y0 >= x1 - x0:
            middle = (y0 + y1) // 2
            split(y0, middle, x0, x1), split(middle + 1, y1, x0, x1)
            order.append(grid[middle, x0:x1])
        else:
            middle = (x0 + x1) // 2
            split(y0, y1, x0, middle), split(y0, y1, middle + 1, x1)
            order.append(grid[y0:y1, middle])

    split(0, height, 0, width)
    rank = np.empty(height * width, dtype=np.int64)
    rank[np.concatenate(order)] = np.arange(height * width)
    return rank


def impute_cholmod(images: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """:func:`impute_cg`'s result by a sparse Cholesky factorisation per row on the host (CHOLMOD, supernodal,
    :func:`nested_dissection_rank` ordering, through CVXOPT); float64 (N, C, H, W) on the host.

    The system is the one :func:`impute_direct` solves (Quantus' up to its sign): A = D - W restricted to the
    removed pixels is symmetric positive definite, so a Cholesky factor of its lower triangle replaces
    SuperLU's LU with partial pivoting (half the work and fill, and a symmetric fill-reducing ordering). The
    right-hand sides sum_{n known} w_n image_n are computed for all rows at once on the tensors; per row only
    the lower triangle's index arrays are gathered (no Python loop over pixels).
    """
    import cvxopt
    import cvxopt.cholmod

    x0 = images.detach().to("cpu", torch.float64)
    unknown = removed.detach().cpu()
    rhs = (_neighbour_sum(x0 * (~unknown)[:, None]) * unknown[:, None]).numpy()  # (N, C, H, W)
    out = x0.numpy().copy()
    count, channels, height, width = out.shape
    degree = _neighbour_sum(torch.ones(height, width, dtype=torch.float64)).numpy().ravel()  # D per pixel
    masks = unknown.numpy().reshape(count, -1)
    rank = nested_dissection_rank(height, width)
    options = dict(cvxopt.cholmod.options)
    cvxopt.cholmod.options["nmethods"] = 1  # the given order only (by default CHOLMOD also tries AMD)
    try:
        for row in range(count):  # one factorisation per system: CHOLMOD has no batch dimension
            _cholmod_row(out[row], rhs[row], masks[row], degree, rank)
    finally:
        cvxopt.cholmod.options.clear()
        cvxopt.cholmod.options.update(options)
    return torch.from_numpy(out)


def _cholmod_row(out: np.ndarray, rhs: np.ndarray, mask: np.ndarray, degree: np.ndarray,
                 rank: np.ndarray) -> None:
    """Solve one row's system in place into ``out`` (C, H, W); ``rhs`` (C, H, W), ``mask`` (H W,) bool."""
    import cvxopt
    import cvxopt.cholmod

    channels, height, width = out.shape
    # Offsets to the neighbours that come earlier in raster order: their entries are A's strict lower triangle.
    earlier = [(dy, dx, w) for (dy, dx), w in NEIGHBOUR_WEIGHTS if dy < 0 or (dy == 0 and dx < 0)]
    unknowns = np.flatnonzero(mask)
    n = unknowns.size
    if n == 0:
        return
    variable = np.full((height + 2) * (width + 2), -1, dtype=np.int64)  # padded: no bounds checks
    y, x = np.divmod(unknowns, width)
    padded = (y + 1) * (width + 2) + (x + 1)
    variable[padded] = np.arange(n)
    rows, cols, vals = [np.arange(n)], [np.arange(n)], [degree[unknowns]]
    for dy, dx, weight in earlier:
        neighbour = variable[padded + dy * (width + 2) + dx]
        free = np.flatnonzero(neighbour >= 0)
        rows.append(free)
        cols.append(neighbour[free])
        vals.append(np.full(free.size, -weight))
    matrix = cvxopt.spmatrix(np.concatenate(vals), np.concatenate(rows), np.concatenate(cols), (n, n))
    values = cvxopt.matrix(np.ascontiguousarray(rhs.reshape(channels, -1)[:, unknowns].T))
    permutation = cvxopt.matrix(np.argsort(rank[unknowns]))
    factor = cvxopt.cholmod.symbolic(matrix, p=permutation, uplo="L")
    cvxopt.cholmod.numeric(matrix, factor)
    cvxopt.cholmod.solve(factor, values)
    out.reshape(channels, -1)[:, unknowns] = np.array(values).T


def linear_imputation(images: torch.Tensor, removed: torch.Tensor, solver: str = "auto") -> torch.Tensor:
    """Noise-free linear imputation, (N, C, H, W) in ``images``' dtype on its device; ``solver`` as in the
    module docstring (``auto``: cholmod on the CPU, CG elsewhere)."""
    if solver not in SOLVERS:
        raise InvalidArgumentError(f"-O road.solver: choose from {', '.join(SOLVERS)}, got {solver!r}")
    if solver == "cholmod" or (solver == "auto" and images.device.type == "cpu"):
        return impute_cholmod(images, removed).to(images.device, images.dtype)
    if solver == "direct":
        return impute_direct(images, removed).to(images.device, images.dtype)
    return impute_cg(images, removed).to(images.dtype)


def image_noise(seeds: list[int], shape: tuple[int, ...], std: torch.Tensor) -> torch.Tensor:
    """(B, *shape) Gaussian noise, image b's from a generator seeded by ``seeds[b]`` (host, so the numbers do
    not depend on the device or the batching), times the per-channel ``std`` (C,) along dim -3."""
    draws = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(torch_seed(s)), dtype=torch.float64)
                         for s in seeds])
    return draws * std.to(torch.float64).view(-1, 1, 1).cpu()


def road_curves(engine: Engine, images: torch.Tensor, scores: torch.Tensor, targets: torch.Tensor,
                seeds: list[int], *, percentages: np.ndarray, noise_std: torch.Tensor, solver: str = "auto",
                orders: tuple[str, ...] = ("morf", "lerf")) -> dict[str, torch.Tensor]:
    """ROAD curves for (B, C, H, W) model inputs ranked by (B, H, W) ``scores``.

    Args:
        noise_std: (C,) noise std per channel in model-input units (0 for the noise-free imputation).
        orders: which of ``morf``/``lerf`` to compute.

    Returns: ``{order}_prob`` (B, P) float64 target probabilities and ``{order}_hit`` (B, P) float64 (1 where
    the model's top class is the target), NaN where the model's outputs were not finite. Images go through in
    chunks of whole images (:data:`MEMORY_BUDGET`), their 2 P perturbed copies through ``engine`` together.
    """
    count, channels, height, width = images.shape
    levels = len(percentages)
    scores = scores.to(images.device)
    per_image = len(orders) * levels * channels * height * width * 8 * 8  # CG's float64 vectors, with slack
    step = max(1, MEMORY_BUDGET // per_image)
    out: dict[str, list[torch.Tensor]] = {f"{o}_{kind}": [] for o in orders for kind in ("prob", "hit")}

    def perturbed_rows(part: slice) -> tuple[torch.Tensor, torch.Tensor]:
        rows = images[part]
        masks = torch.stack([removal_masks(scores[part], percentages, lerf=(o == "lerf")) for o in orders], 1)
        removed = masks.reshape(-1, height, width)  # (b * orders * P, H, W), image-major
        copies = rows.repeat_interleave(len(orders) * levels, 0)
        imputed = linear_imputation(copies, removed, solver)
        noise = image_noise(seeds[part], (len(orders) * levels, channels, height, width), noise_std)
        noise = noise.to(imputed.device, imputed.dtype).reshape_as(imputed)
        return imputed + noise * removed[:, None].to(imputed.dtype), targets[part].repeat_interleave(len(orders) * levels)

    # A host solver (SciPy, CHOLMOD: both release the GIL) imputes the next image while the model scores this
    # one's P copies (already full engine chunks): one image per step.
    ahead = (solver in ("cholmod", "direct") or (solver == "auto" and images.device.type == "cpu")) and count > 1
    step = 1 if ahead else step
    parts = [slice(begin, min(begin + step, count)) for begin in range(0, count, step)]
    with ThreadPoolExecutor(max_workers=1) if ahead else contextlib.nullcontext() as pool:
        pending = pool.submit(perturbed_rows, parts[0]) if ahead else None
        for index, part in enumerate(parts):
            perturbed, row_targets = pending.result() if ahead else perturbed_rows(part)
            if ahead and index + 1 < len(parts):
                pending = pool.submit(perturbed_rows, parts[index + 1])
            probability, hit = engine.scores_and_hits(perturbed, row_targets)
            probability = probability.to(torch.float64)
            hit = torch.where(torch.isfinite(probability), hit.to(torch.float64), torch.nan)
            shape = (part.stop - part.start, len(orders), levels)
            for order_index, order in enumerate(orders):  # on the device until the end: one copy back
                out[f"{order}_prob"].append(probability.view(shape)[:, order_index])
                out[f"{order}_hit"].append(hit.view(shape)[:, order_index])
    return {name: torch.cat(parts).cpu() for name, parts in out.items()}


def _compute(batch: MetricBatch) -> MetricScores:
    options = batch.options
    percentages = parse_percentages(options.get("percentages", DEFAULT_PERCENTAGES))
    std = torch.tensor(batch.preprocessing.normalization.std, dtype=torch.float64)
    noise = float(options.get("noise", DEFAULT_NOISE)) / std
    curves = road_curves(batch.engine, batch.images, batch.scores, batch.targets, list(batch.seeds),
                         percentages=percentages, noise_std=noise, solver=options.get("solver", "auto"))
    morf, lerf = curves["morf_prob"].mean(1), curves["lerf_prob"].mean(1)
    values = {"road": lerf - morf, "road_morf": morf, "road_lerf": lerf,
              "road_morf_accuracy": curves["morf_hit"].mean(1), "road_lerf_accuracy": curves["lerf_hit"].mean(1)}
    return MetricScores(values={k: v.numpy().astype(np.float64) for k, v in values.items()},
                        curves={"road_morf": curves["morf_prob"].numpy(), "road_lerf": curves["lerf_prob"].numpy()})


def _curve_x(options: dict) -> list[float]:
    return list(parse_percentages(options.get("percentages", DEFAULT_PERCENTAGES)) / 100.0)


ROAD = Metric(
    name="road",
    family="faithfulness",
    summary="remove the most / least relevant pixels by noisy linear imputation (no mask leak); mean target "
            "probability over 1%..99% removed, LeRF minus MoRF",
    reference="Rong et al. 2022 (ICML), §4.2 noisy linear imputation; checked against Quantus ROAD / "
              "noisy_linear_imputation",
    values=(Value("road", True, "road_lerf - road_morf"),
            Value("road_morf", False, "mean target probability, most relevant pixels removed"),
            Value("road_lerf", True, "mean target probability, least relevant pixels removed"),
            Value("road_morf_accuracy", False, "fraction of percentages still predicting the target (MoRF)"),
            Value("road_lerf_accuracy", True, "fraction of percentages still predicting the target (LeRF)")),
    compute=_compute,
    needs_model=True,
    ranked=True,
    # The x grid of the default percentages; a run with -O road.percentages has its own (the curves' width).
    curve_x={"road_morf": _curve_x, "road_lerf": _curve_x},
    options=(
        MetricOption("percentages", DEFAULT_PERCENTAGES, str,
                     "a count N (midpoints of N equal steps: 50 gives 1,3,...,99) or percentages in (0, 100), "
                     "comma-separated (one percentage: write 30.0)",
                     check=_check_percentages),
        MetricOption("noise", DEFAULT_NOISE, float, "std of the noise added to imputed pixels, in [0, 1] "
                     "pixel units", check=lambda v: None if np.isfinite(v) and v >= 0 else "must be >= 0"),
        MetricOption("solver", "auto", str, "cg (batched on the device), direct (SciPy SuperLU, per image on "
                     "the host), cholmod (sparse Cholesky, per image on the host) or auto (cholmod on the CPU, "
                     "cg elsewhere)", choices=SOLVERS),
    ),
)

__all__: list[str] = ["ROAD", "road_curves", "linear_imputation", "impute_cg", "impute_direct", "impute_cholmod",
                      "nested_dissection_rank",
                      "removal_masks", "removal_counts", "parse_percentages", "image_noise"]

"""The GPG advantage estimator (paper Algorithm 2) as pure, vectorized functions of arrays.

Rollouts are laid out as SB3 stores them: ``(n_steps, n_envs)``, one column per env, rows in time order.
A *trajectory* is a maximal run of one env's steps inside the rollout that belong to one episode; it starts
at row 0 or wherever ``episode_starts`` is set. Nothing here knows about SB3 objects, so the tests call
these functions directly against a plain loop-based implementation of Algorithm 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

#: How a bin turns its returns into a baseline (see :func:`group_advantages`).
BASELINES = ("mean", "leave_one_out")
#: How advantages are scaled (see :func:`group_advantages`).
ADVANTAGE_SCALES = ("none", "bin_std")
#: How a sparse bin borrows from a coarser one (see :func:`group_advantages`).
BIN_FALLBACKS = ("replace", "shrink")
#: A return within this relative distance of its baseline is "equal" to it (:func:`no_signal_steps`): bin means
#: of equal returns differ from them by float rounding only, about ``n * 1e-16`` relative for ``n`` samples.
NO_SIGNAL_RTOL = 1e-9


@dataclass(frozen=True)
class GroupStats:
    """Figures that describe one group, logged under ``group/``."""

    trajectories: int
    bins: int
    mean_samples_per_bin: float
    single_sample_share: float
    baseline_mean: float
    baseline_std: float
    advantage_mean: float
    advantage_std: float
    #: Share of the group's steps whose baseline came from a coarser bin (``bin_fallback="replace"``), or the
    #: mean weight of the coarser baselines (``"shrink"``); 0 without a fallback.
    fallback_share: float = 0.0


class GroupAdvantages(NamedTuple):
    returns: np.ndarray
    advantages: np.ndarray
    baselines: np.ndarray
    stats: GroupStats


def discounted_returns(rewards: np.ndarray, episode_starts: np.ndarray, gamma: float) -> np.ndarray:
    """
    Monte Carlo returns ``R_t = r_t + gamma * R_{t+1}`` inside each trajectory.

    The continuation is 0 after an episode's last step (terminated or truncated: there is no critic to
    bootstrap with) and after the rollout's last row (a window cut leaves a truncated return).

    :param rewards: ``(n_steps, n_envs)`` rewards.
    :param episode_starts: ``(n_steps, n_envs)``, true where the step is the first of an episode.
    :param gamma: Discount factor.
    :return: ``(n_steps, n_envs)`` returns, float64.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    continues = ~np.asarray(episode_starts, dtype=bool)
    returns = np.empty_like(rewards)
    next_return = np.zeros(rewards.shape[1])
    # One vector operation per row (as SB3's GAE loop), never per transition.
    for step in range(rewards.shape[0] - 1, -1, -1):
        returns[step] = next_return = rewards[step] + gamma * next_return
        next_return = next_return * continues[step]
    return returns


def trajectory_ids(episode_starts: np.ndarray) -> np.ndarray:
    """
    Number the trajectories of a rollout.

    :param episode_starts: ``(n_steps, n_envs)`` episode-start flags.
    :return: ``(n_steps, n_envs)`` int64 ids, consecutive in env-major order (env 0's trajectories first).
    """
    starts = np.array(episode_starts, dtype=bool).T
    starts[:, 0] = True
    return (np.cumsum(starts.ravel()) - 1).reshape(starts.shape).T


def bin_index(bin_keys: np.ndarray) -> tuple[np.ndarray, int]:
    """
    Map bin keys to dense bin indices.

    :param bin_keys: ``(n,)`` keys, or ``(n, k)`` keys compared row-wise.
    :return: ``(n,)`` int64 indices in ``[0, n_bins)`` such that equal keys get equal indices, and
        ``n_bins`` (an upper bound on the number of distinct keys; some indices may be unused).
    """
    keys = np.asarray(bin_keys)
    n = keys.shape[0]
    if keys.ndim == 2 and keys.shape[1] == 1:
        keys = keys[:, 0]
    if keys.dtype.kind == "f":
        if keys.ndim == 1:
            unique, inverse = np.unique(keys, return_inverse=True)
        else:
            unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        return inverse.reshape(n).astype(np.int64), len(unique)
    keys = keys.astype(np.int64, copy=False)
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    if keys.ndim == 2:
        # Mixed-radix encoding of each row into one int64 when the ranges allow it (exact, no sort);
        # otherwise fall back to a row-wise unique. Columns are made contiguous first: reductions along
        # axis 0 of an (n, k) array are several times slower.
        columns = np.ascontiguousarray(keys.T)
        low = columns.min(axis=1)
        spans = columns.max(axis=1) - low + 1
        if np.sum(np.log2(spans.astype(np.float64))) >= 62:
            unique, inverse = np.unique(keys, axis=0, return_inverse=True)
            return inverse.reshape(n).astype(np.int64), len(unique)
        keys = columns[0] - low[0]
        stride = 1
        for column, column_low, span in zip(columns[1:], low[1:], spans[:-1], strict=True):
            stride *= int(span)
            keys += (column - column_low) * stride
    low, high = keys.min(), keys.max()
    if high - low < 4 * n + 1024:
        # Small key range (time bins, a few discrete states): the shifted key is already a dense index.
        return keys - low, int(high - low + 1)
    unique, inverse = np.unique(keys, return_inverse=True)
    return inverse.reshape(n).astype(np.int64), len(unique)


def first_visits(trajectory: np.ndarray, bins: np.ndarray, n_bins: int) -> np.ndarray:
    """
    Mark the first step of each trajectory in each bin (Algorithm 2, line 5).

    :param trajectory: ``(n,)`` trajectory ids, steps of a trajectory in time order.
    :param bins: ``(n,)`` dense bin indices.
    :param n_bins: Number of bin indices.
    :return: ``(n,)`` bool, true for first visits.
    """
    pair = trajectory.astype(np.int64) * max(n_bins, 1) + bins
    # np.unique sorts stably when return_index is set, so the index is each pair's earliest step.
    _, first = np.unique(pair, return_index=True)
    mask = np.zeros(len(pair), dtype=bool)
    mask[first] = True
    return mask


def check_estimator_options(baseline: str, advantage_scale: str, min_bin_samples: int, bin_fallback: str) -> None:
    """
    Refuse unknown estimator options with the valid ones (:func:`group_advantages` documents them).

    :raises ValueError: On an unknown name or a negative or non-integer ``min_bin_samples``.
    """
    for name, value, valid in (
        ("baseline", baseline, BASELINES),
        ("advantage_scale", advantage_scale, ADVANTAGE_SCALES),
        ("bin_fallback", bin_fallback, BIN_FALLBACKS),
    ):
        if value not in valid:
            raise ValueError(f"Unknown {name}={value!r}: valid values are {', '.join(map(repr, valid))}.")
    if isinstance(min_bin_samples, bool) or not isinstance(min_bin_samples, (int, np.integer)) or min_bin_samples < 0:
        raise ValueError(
            f"min_bin_samples={min_bin_samples!r} must be an integer >= 0 (0 turns the coarser-bin fallback off)."
        )


def fallback_active(min_bin_samples: int, bin_fallback: str) -> bool:
    """Whether sparse bins borrow from coarser ones: ``"replace"`` needs ``k >= 2`` (every bin has a sample),
    ``"shrink"`` needs ``k >= 1`` (a pseudo-count of 0 is the plain baseline)."""
    return min_bin_samples >= (2 if bin_fallback == "replace" else 1)


class _BinLevel(NamedTuple):
    """One binning level of the group, per step: its bin's baseline and the samples behind it."""

    counts: np.ndarray  # (n_bins,) trajectories that inserted a return into each bin
    step_counts: np.ndarray  # (n,) trajectories in each step's bin
    baselines: np.ndarray  # (n,) each step's baseline at this level
    weights: np.ndarray  # (n,) returns averaged into each step's baseline (step_counts, minus its own if left out)
    variances: np.ndarray | None  # (n,) population variance of each step's bin, exactly 0 when its returns are equal


def _bin_level(
    bins: np.ndarray,
    n_bins: int,
    trajectory: np.ndarray,
    returns: np.ndarray,
    in_group: np.ndarray | None,
    every_step_first_visit: bool,
    leave_one_out: bool,
    need_variance: bool,
) -> _BinLevel:
    first_of_step = None  # index of the first visit of each step's (trajectory, bin) pair
    if every_step_first_visit:
        is_first = None
    elif leave_one_out:
        pair = trajectory * max(n_bins, 1) + bins
        _, first_index, pair_of_step = np.unique(pair, return_index=True, return_inverse=True)
        first_of_step = first_index[pair_of_step.reshape(-1)]
        is_first = np.zeros(len(bins), dtype=bool)
        is_first[first_index] = True
    else:
        is_first = first_visits(trajectory, bins, n_bins)
    if is_first is None:
        inserted = slice(None) if in_group is None else in_group
    else:
        inserted = is_first if in_group is None else is_first & in_group
    inserted_bins, inserted_returns = bins[inserted], returns[inserted]
    counts = np.bincount(inserted_bins, minlength=n_bins)
    sums = np.bincount(inserted_bins, weights=inserted_returns, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    step_counts = counts[bins]
    baselines = means[bins]
    weights = step_counts.astype(np.float64)
    if leave_one_out:
        # The step's own trajectory's sample is its pair's first-visit return (each trajectory inserts one
        # return per bin: the U-statistic form, seeds/003). A bin of one trajectory has no other sample: its
        # baseline stays the mean, i.e. that sample, as with baseline="mean".
        own = returns if first_of_step is None else returns[first_of_step]
        if in_group is None:
            own_inserted = np.ones(len(bins))
        else:
            own_inserted = (in_group if first_of_step is None else in_group[first_of_step]).astype(np.float64)
        weights = weights - own_inserted
        others = weights > 0
        baselines = np.divide(sums[bins] - own * own_inserted, weights, out=baselines.copy(), where=others)
    variances = None
    if need_variance:
        residuals = inserted_returns - means[inserted_bins]
        with np.errstate(invalid="ignore", divide="ignore"):
            bin_variances = np.bincount(inserted_bins, weights=residuals * residuals, minlength=n_bins) / counts
        # Exactly 0 where all returns of a bin are equal (a lone sample included): the rounding of the mean
        # would otherwise leave a tiny spread that turns a revisit's nonzero R - b into a huge advantage.
        reference = np.zeros(n_bins)
        reference[inserted_bins] = inserted_returns
        spread = np.bincount(inserted_bins, weights=inserted_returns != reference[inserted_bins], minlength=n_bins) > 0
        variances = np.where(spread, bin_variances, 0.0)[bins]
    return _BinLevel(counts, step_counts, baselines, weights, variances)


def group_advantages(
    rewards: np.ndarray,
    episode_starts: np.ndarray,
    bin_keys: np.ndarray,
    gamma: float,
    keys_include_time: bool = False,
    valid: np.ndarray | None = None,
    *,
    baseline: str = "mean",
    advantage_scale: str = "none",
    min_bin_samples: int = 0,
    bin_fallback: str = "replace",
    coarse_keys: Sequence[np.ndarray] = (),
    coarse_keys_include_time: Sequence[bool] | None = None,
    scale_eps: float = 1e-8,
) -> GroupAdvantages:
    """
    GPG advantages ``A = R - b(f(s, t))`` with the group baseline of Algorithm 2.

    1. ``R`` is the discounted return inside each trajectory (:func:`discounted_returns`).
    2. Each trajectory inserts ``R`` into bin ``f(s_t, t)`` at its first visit of that bin only.
    3. ``b(k)`` is the mean of the returns inserted into bin ``k`` over the whole group.
    4. Every step, first visit or not, gets ``A = R - b(f(s_t, t))``.

    The keyword options are estimator variants; their defaults give exactly Algorithm 2 above. A bin's
    *samples* are the returns inserted in step 2 (one per trajectory that visits it); ``n`` is their number.

    :param rewards: ``(n_steps, n_envs)`` rewards.
    :param episode_starts: ``(n_steps, n_envs)`` true where the step is the first of an episode.
    :param bin_keys: ``(n_steps, n_envs)`` or ``(n_steps, n_envs, k)`` numeric bin keys ``f(s_t, t)``.
    :param gamma: Discount factor.
    :param keys_include_time: Set when the keys contain the episode time (``"time"``, ``"space_time"``): a
        trajectory then never revisits a bin and the first-visit search is skipped. It is only a shortcut:
        leaving it unset gives the same result.
    :param valid: Optional ``(n_steps, n_envs)`` mask of the steps that belong to the group (complete-episode
        collection discards the steps an env takes after its last episode). Invalid steps neither feed a
        baseline nor get an advantage (it is 0).
    :param baseline: ``"mean"`` (Algorithm 2) or ``"leave_one_out"``: each step's baseline is the mean of its
        bin's samples *other than its own trajectory's* (the sample its trajectory inserted at its first visit
        of the bin, so a revisit step leaves out that first-visit return too). This is the unbiased
        U-statistic form of seeds/003: the baseline no longer depends on the step's own return. For a first
        visit it scales the mean-baseline advantage by ``n / (n - 1)``. A bin of one trajectory has no other
        sample: its baseline stays that trajectory's own sample, exactly as with ``"mean"`` (advantage 0 at
        the first visit, ``R_t - R_first`` at revisits), unless a coarser-bin fallback takes over.
    :param advantage_scale: ``"none"`` or ``"bin_std"``: divide each advantage by ``std + scale_eps``, the
        *population* standard deviation (``ddof=0``) of its bin's samples, as GRPO scales by its group's std
        (TRL's GRPO uses the sample std, larger by ``sqrt(n / (n - 1))``). With the mean baseline a bin's
        first-visit advantages then have mean 0 and standard deviation 1. A bin whose samples are all equal
        (a bin of one trajectory included) has no spread to scale by and gives all its steps advantage 0.
    :param min_bin_samples: ``k`` of the coarser-bin fallback; 0 (default) turns it off. ``"replace"``: a step
        whose bin holds fewer than ``k`` samples takes the baseline (and, with ``"bin_std"``, the std) of the
        first coarser bin in ``coarse_keys`` that holds at least ``k``, the coarsest one if none does.
        ``"shrink"``: every bin's baseline shrinks toward its coarser bin's by sample count,
        ``b = (n b_fine + k b_coarse) / (n + k)`` (``n`` counts the samples averaged into ``b_fine``: one less
        with ``"leave_one_out"``), applied from the coarsest level inward so ``b_coarse`` is itself shrunk;
        variances shrink the same way.
    :param bin_fallback: ``"replace"`` or ``"shrink"``, see ``min_bin_samples``.
    :param coarse_keys: Bin keys of the coarser binnings, finest first, each shaped like ``bin_keys`` (for
        space-time binning: the time keys, then the universal keys; see ``Binning.coarser``). A coarser level
        is binned like the fine one, with its own first visits. Only read when the fallback is on; without
        coarser keys the fallback does nothing.
    :param coarse_keys_include_time: The ``keys_include_time`` shortcut of each entry of ``coarse_keys``
        (default: no shortcut).
    :param scale_eps: The ``eps`` of ``"bin_std"``.
    :return: returns, advantages and baselines as ``(n_steps, n_envs)`` float64 arrays, and the group's
        :class:`GroupStats`.
    """
    check_estimator_options(baseline, advantage_scale, min_bin_samples, bin_fallback)
    rewards = np.asarray(rewards, dtype=np.float64)
    shape = rewards.shape
    n = rewards.size
    returns = discounted_returns(rewards, episode_starts, gamma)
    keys = np.asarray(bin_keys).reshape(n, -1)
    bins, n_bins = bin_index(keys)
    trajectory = trajectory_ids(episode_starts).ravel()
    flat_returns = returns.ravel()
    use_fallback = len(coarse_keys) > 0 and fallback_active(min_bin_samples, bin_fallback)
    fallback_share = 0.0
    if baseline == "mean" and advantage_scale == "none" and not use_fallback:
        # Algorithm 2 as written: the variants below pay for their extra passes, this path does not.
        if valid is None:
            # Every step is in the group: no masking passes over the arrays (they dominate at a million steps).
            in_group = slice(None)
            inserted = slice(None) if keys_include_time else first_visits(trajectory, bins, n_bins)
        else:
            in_group = np.asarray(valid, dtype=bool).ravel()
            inserted = in_group if keys_include_time else in_group & first_visits(trajectory, bins, n_bins)
        counts = np.bincount(bins[inserted], minlength=n_bins)
        sums = np.bincount(bins[inserted], weights=flat_returns[inserted], minlength=n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            bin_means = sums / counts
        baselines = bin_means[bins]
        advantages = flat_returns - baselines
    else:
        group_mask = None if valid is None else np.asarray(valid, dtype=bool).ravel()
        in_group = slice(None) if group_mask is None else group_mask
        level_keys = [(bins, n_bins, keys_include_time)]
        if use_fallback:
            include_time = [False] * len(coarse_keys) if coarse_keys_include_time is None else coarse_keys_include_time
            for coarse, coarse_include_time in zip(coarse_keys, include_time, strict=True):
                level_keys.append((*bin_index(np.asarray(coarse).reshape(n, -1)), coarse_include_time))
        levels = [
            _bin_level(
                level_bins,
                level_n_bins,
                trajectory,
                flat_returns,
                group_mask,
                every_step_first_visit,
                leave_one_out=baseline == "leave_one_out",
                need_variance=advantage_scale == "bin_std",
            )
            for level_bins, level_n_bins, every_step_first_visit in level_keys
        ]
        counts = levels[0].counts
        baselines, variances = levels[-1].baselines, levels[-1].variances
        k = float(min_bin_samples)
        # Coarsest level first, so that each level falls back on (or shrinks toward) the already combined
        # coarser ones: one vector operation per level, never per bin.
        for level in reversed(levels[:-1]):
            if bin_fallback == "replace":
                enough = level.step_counts >= k
                baselines = np.where(enough, level.baselines, baselines)
                if variances is not None:
                    variances = np.where(enough, level.variances, variances)
            else:
                with np.errstate(invalid="ignore"):
                    baselines = (level.weights * level.baselines + k * baselines) / (level.weights + k)
                    if variances is not None:
                        variances = (level.step_counts * level.variances + k * variances) / (level.step_counts + k)
        if len(levels) > 1:
            fine = levels[0]
            coarse_weight = (fine.step_counts < k) if bin_fallback == "replace" else k / (fine.weights + k)
            fallback_share = float(np.mean(coarse_weight[in_group])) if coarse_weight[in_group].size else 0.0
        advantages = flat_returns - baselines
        if variances is not None:
            spread = variances > 0
            advantages = np.divide(advantages, np.sqrt(variances) + scale_eps, out=np.zeros(n), where=spread)
    if valid is not None:
        advantages[~in_group] = 0.0
        baselines[~in_group] = 0.0

    used = counts > 0
    step_counts = counts[bins[in_group]]
    group_baselines = baselines[in_group]
    group_advs = advantages[in_group]
    stats = GroupStats(
        trajectories=int(np.count_nonzero(np.bincount(trajectory[in_group]))),
        bins=int(used.sum()),
        mean_samples_per_bin=float(counts[used].mean()) if used.any() else 0.0,
        single_sample_share=float(np.mean(step_counts == 1)) if step_counts.size else 0.0,
        baseline_mean=float(group_baselines.mean()) if group_baselines.size else 0.0,
        baseline_std=float(group_baselines.std()) if group_baselines.size else 0.0,
        advantage_mean=float(group_advs.mean()) if group_advs.size else 0.0,
        advantage_std=float(group_advs.std()) if group_advs.size else 0.0,
        fallback_share=fallback_share,
    )
    return GroupAdvantages(returns, advantages.reshape(shape), baselines.reshape(shape), stats)


def no_signal_steps(returns: np.ndarray, baselines: np.ndarray, advantages: np.ndarray) -> np.ndarray:
    """
    The steps whose advantage carries no signal: it is 0, or the return equals the baseline up to the
    rounding of a bin mean (relative tolerance :data:`NO_SIGNAL_RTOL`). These are the steps of bins whose
    samples are all equal, a bin of one trajectory included, and the correction of seeds/001 counts them.

    :param returns: Returns, any shape.
    :param baselines: Baselines, the same shape.
    :param advantages: Advantages, the same shape.
    :return: A bool array of that shape.
    """
    returns, baselines = np.asarray(returns, dtype=np.float64), np.asarray(baselines, dtype=np.float64)
    tolerance = NO_SIGNAL_RTOL * np.maximum(np.abs(returns), np.abs(baselines))
    return (np.asarray(advantages) == 0) | (np.abs(returns - baselines) <= tolerance)

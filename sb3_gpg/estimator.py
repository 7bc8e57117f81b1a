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

from sb3_gpg.arguments import ArgumentError, check_choice, check_int, is_number

#: How a bin turns its returns into a baseline (see :class:`EstimatorConfig`).
BASELINES = ("mean", "leave_one_out")
#: How advantages are scaled (see :class:`EstimatorConfig`).
ADVANTAGE_SCALES = ("none", "bin_std")
#: How a sparse bin borrows from a coarser one (see :class:`EstimatorConfig`).
BIN_FALLBACKS = ("replace", "shrink")
#: The ``eps`` of ``advantage_scale="bin_std"``: advantages are divided by ``std + SCALE_EPS``.
SCALE_EPS = 1e-8
#: A return within this relative distance of its baseline is "equal" to it: the mean of ``n`` equal returns differs
#: from them by float rounding only, at most about ``n * 1.1e-16`` relative (1e-10 covers a million samples).
NO_SIGNAL_RTOL = 1e-10


@dataclass(frozen=True)
class EstimatorConfig:
    """
    How the binned group baseline turns a bin's returns into advantages. The defaults are Algorithm 2; the
    other values are variants from the related work. Validated once, here, and handed from
    :class:`~sb3_gpg.GPG` to its rollout buffer to :func:`group_advantages`.

    A bin's *samples* are the returns its trajectories insert: one per trajectory that visits it, at its first
    visit (Algorithm 2, line 5); ``n`` is their number.

    :param baseline: ``"mean"`` (Algorithm 2): the mean of the bin's samples. ``"leave_one_out"``: the mean of
        the samples *other than its own trajectory's* (the sample its trajectory inserted at its first visit of
        the bin, so a revisit step leaves out that first-visit return too). This is the unbiased U-statistic
        form of arXiv 2603.01162 (RLOO): the baseline no longer depends on the step's own return. For a first
        visit it scales the mean-baseline advantage by ``n / (n - 1)``. A bin of one trajectory has no other
        sample: its baseline stays that trajectory's own sample, exactly as with ``"mean"`` (advantage 0 at the
        first visit, ``R_t - R_first`` at revisits), unless a coarser-bin fallback takes over.
    :param advantage_scale: ``"none"``, or ``"bin_std"``: divide each advantage by ``std + SCALE_EPS``, the
        *population* standard deviation (``ddof=0``) of its bin's samples, as GRPO scales by its group's std
        (TRL's GRPO uses the sample std, larger by ``sqrt(n / (n - 1))``). With the mean baseline a bin's
        first-visit advantages then have mean 0 and standard deviation 1. A bin whose samples are all equal (a
        bin of one trajectory included) has no spread to scale by and gives all its steps advantage 0.
    :param min_bin_samples: ``k`` of the coarser-bin fallback; 0 (default) turns it off. The coarser levels are
        the binning's own (:attr:`sb3_gpg.binning.Binning.coarser`: space-time falls back on time, then on the
        universal bin; every other binning on the universal bin). With ``bin_fallback="replace"`` a step whose
        bin holds fewer than ``k`` samples takes the baseline (and, with ``"bin_std"``, the std) of the first
        coarser bin that holds at least ``k``, the coarsest one if none does. With ``"shrink"`` every bin's
        baseline shrinks toward its coarser bin's by sample count, ``b = (n b_fine + k b_coarse) / (n + k)`` (``n``
        counts the samples averaged into ``b_fine``: one less with ``"leave_one_out"``), applied from the
        coarsest level inward so that ``b_coarse`` is itself shrunk; variances shrink the same way.
    :param bin_fallback: ``"replace"`` or ``"shrink"``, see ``min_bin_samples``.
    :param history_weight: ``beta`` in ``[0, 1)``: the samples of earlier rollouts stay in their bins with weight
        ``beta ** age`` (age in rollouts), so that a bin's baseline is ``(sum_now + beta S) / (n_now + beta N)`` with
        ``S`` and ``N`` the decayed sums and counts of the bin's past samples (:class:`BinHistory`). It gives sparse
        bins (few envs, fine cells) more samples from the recent past; the older samples come from older
        policies, so ``beta`` trades variance for lag. 0 (default): the current group only, Algorithm 2. Applies to
        the finest binning level.
    """

    baseline: str = "mean"
    advantage_scale: str = "none"
    min_bin_samples: int = 0
    bin_fallback: str = "replace"
    history_weight: float = 0.0

    def __post_init__(self) -> None:
        check_choice("baseline", self.baseline, BASELINES)
        check_choice("advantage_scale", self.advantage_scale, ADVANTAGE_SCALES)
        check_choice("bin_fallback", self.bin_fallback, BIN_FALLBACKS)
        object.__setattr__(self, "min_bin_samples", check_int("min_bin_samples", self.min_bin_samples, minimum=0))
        if not is_number(self.history_weight) or not 0 <= self.history_weight < 1:
            raise ArgumentError(
                "history_weight", f"history_weight={self.history_weight!r} must be a number in [0, 1) (0: no history)."
            )

    @property
    def uses_fallback(self) -> bool:
        """Whether sparse bins borrow from coarser ones: ``"replace"`` needs ``k >= 2`` (every bin has a sample),
        ``"shrink"`` needs ``k >= 1`` (a pseudo-count of 0 is the plain baseline)."""
        return self.min_bin_samples >= (2 if self.bin_fallback == "replace" else 1)


#: The paper's estimator: every option at its default.
ALGORITHM_2 = EstimatorConfig()


@dataclass(frozen=True)
class GroupStats:
    """Figures that describe one group, logged under ``group/``."""

    #: Steps in the group (all of the rollout's, less the ones complete-episode collection leaves out).
    steps: int
    trajectories: int
    bins: int
    mean_samples_per_bin: float
    #: Share of the group's steps whose bin holds one trajectory (advantage 0 at its first visit).
    single_sample_share: float
    #: Share of the group's steps whose advantage is exactly 0 because their return equals their baseline
    #: (a bin whose samples are all equal, a bin of one trajectory included): they carry no learning signal.
    no_signal_share: float
    baseline_mean: float
    baseline_std: float
    advantage_mean: float
    advantage_std: float
    #: Share of the group's steps whose baseline came from a coarser bin (``bin_fallback="replace"``), or the
    #: mean weight of the coarser baselines (``"shrink"``); 0 without a fallback.
    fallback_share: float = 0.0


@dataclass(frozen=True)
class BinHistory:
    """
    The decayed samples of earlier rollouts, per bin (``history_weight`` of :class:`EstimatorConfig`): ``m`` bins.

    :param keys: ``(m, k)`` bin keys.
    :param sums: ``(m,)`` decayed sums of the bins' samples.
    :param counts: ``(m,)`` decayed counts.
    """

    keys: np.ndarray
    sums: np.ndarray
    counts: np.ndarray

    #: Bins whose decayed count falls below this are forgotten: the history stays the size of the bins in use.
    MIN_COUNT = 1e-3


class GroupAdvantages(NamedTuple):
    returns: np.ndarray
    advantages: np.ndarray
    baselines: np.ndarray
    stats: GroupStats
    #: The bins' samples for the next rollout's ``history`` (None without ``history_weight``).
    history: BinHistory | None = None


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


class _BinLevel(NamedTuple):
    """One binning level of the group, per step: its bin's baseline and the samples behind it."""

    counts: np.ndarray  # (n_bins,) samples (trajectories that inserted a return) of each bin
    step_counts: np.ndarray  # (n,) samples in each step's bin
    baselines: np.ndarray  # (n,) each step's baseline at this level
    weights: np.ndarray  # (n,) samples averaged into each step's baseline (one less if its own is left out)
    variances: np.ndarray | None  # (n,) population variance of each step's bin, exactly 0 when its samples are equal
    history: BinHistory | None = None  # the bins' samples, this group's added to the decayed past ones


def _with_history(
    keys: np.ndarray,
    bins: np.ndarray,
    n_bins: int,
    sums: np.ndarray,
    counts: np.ndarray,
    history: BinHistory | None,
    beta: float,
) -> tuple[np.ndarray, np.ndarray, BinHistory]:
    """
    This group's bin sums and counts plus the decayed past ones of the same bins, and the history for the next group.

    :return: ``(n_bins,)`` sums and (float) counts including the past, and the new :class:`BinHistory`.
    """
    used = np.flatnonzero(counts > 0)
    key_of_bin = np.empty((n_bins, keys.shape[1]), dtype=keys.dtype)
    key_of_bin[bins] = keys  # every step of a bin has the bin's key
    current = key_of_bin[used]
    past = history if history is not None and history.keys.shape[1:] == current.shape[1:] else None
    all_keys = current if past is None else np.concatenate((current, past.keys.astype(current.dtype)))
    unique, index = np.unique(all_keys, axis=0, return_inverse=True)
    index = index.reshape(-1)
    total_sums = np.zeros(len(unique))
    total_counts = np.zeros(len(unique))
    if past is not None:
        np.add.at(total_sums, index[len(current) :], beta * past.sums)
        np.add.at(total_counts, index[len(current) :], beta * past.counts)
    past_sums, past_counts = total_sums[index[: len(current)]], total_counts[index[: len(current)]]
    total_sums[index[: len(current)]] += sums[used]
    total_counts[index[: len(current)]] += counts[used]
    keep = total_counts >= BinHistory.MIN_COUNT
    new_history = BinHistory(unique[keep], total_sums[keep], total_counts[keep])
    combined_sums, combined_counts = sums.astype(np.float64), counts.astype(np.float64)
    combined_sums[used] += past_sums
    combined_counts[used] += past_counts
    return combined_sums, combined_counts, new_history


def _bin_level(
    keys: np.ndarray,
    keys_include_time: bool,
    trajectory: np.ndarray,
    returns: np.ndarray,
    group_mask: np.ndarray | None,
    config: EstimatorConfig,
    history: BinHistory | None = None,
    use_history: bool = False,
) -> _BinLevel:
    """
    Algorithm 2 at one binning level: each trajectory inserts its return at its first visit of a bin, and each
    step's baseline is its bin's mean (with ``config``'s baseline and scale variants).

    :param keys: ``(n, k)`` bin keys of the level.
    :param keys_include_time: Every step is a first visit (no trajectory revisits a bin): skip the search.
    :param trajectory: ``(n,)`` trajectory ids.
    :param returns: ``(n,)`` returns.
    :param group_mask: ``(n,)`` steps that belong to the group, or ``None`` for all (no masking passes).
    :param config: The estimator variants.
    :param history: The past samples of the level's bins (``history_weight``).
    :param use_history: Add the past samples (the finest level, with ``history_weight > 0``).
    """
    bins, n_bins = bin_index(keys)
    leave_one_out = config.baseline == "leave_one_out"
    # first_of_step: the index of each step's (trajectory, bin) first visit, whose sample is its trajectory's.
    first_of_step = None
    if keys_include_time:
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
        inserted = slice(None) if group_mask is None else group_mask
    else:
        inserted = is_first if group_mask is None else is_first & group_mask
    inserted_bins, inserted_returns = bins[inserted], returns[inserted]
    counts = np.bincount(inserted_bins, minlength=n_bins)
    sums = np.bincount(inserted_bins, weights=inserted_returns, minlength=n_bins)
    new_history, averaged_sums, averaged = None, sums, counts
    if use_history:
        averaged_sums, averaged, new_history = _with_history(keys, bins, n_bins, sums, counts, history, config.history_weight)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = averaged_sums / averaged
    step_counts = counts[bins]
    baselines = means[bins]
    weights = step_counts if averaged is counts else averaged[bins]
    if leave_one_out:
        own = returns if first_of_step is None else returns[first_of_step]
        if group_mask is None:
            own_inserted = np.ones(len(bins))
        else:
            own_inserted = (group_mask if first_of_step is None else group_mask[first_of_step]).astype(np.float64)
        weights = weights - own_inserted
        # A bin of one trajectory has no other sample: its baseline stays the mean, i.e. that sample.
        baselines = np.divide(averaged_sums[bins] - own * own_inserted, weights, out=baselines, where=weights > 0)
    variances = None
    if config.advantage_scale == "bin_std":
        with np.errstate(invalid="ignore", divide="ignore"):
            residuals = inserted_returns - (sums / counts)[inserted_bins]  # the spread of this group's samples
            bin_variances = np.bincount(inserted_bins, weights=residuals * residuals, minlength=n_bins) / counts
        # Exactly 0 where all samples of a bin are equal (a lone sample included): the rounding of the mean would
        # otherwise leave a tiny spread that turns a revisit's nonzero R - b into a huge advantage.
        reference = np.zeros(n_bins)
        reference[inserted_bins] = inserted_returns
        spread = np.bincount(inserted_bins, weights=inserted_returns != reference[inserted_bins], minlength=n_bins) > 0
        variances = np.where(spread, bin_variances, 0.0)[bins]
    return _BinLevel(counts, step_counts, baselines, weights, variances, new_history)


def _combine_levels(levels: Sequence[_BinLevel], config: EstimatorConfig) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """
    The coarser-bin fallback: each level falls back on (or shrinks toward) the already combined coarser ones,
    coarsest first; one vector operation per level, never per bin.

    :return: baselines, variances (``None`` without ``"bin_std"``) and each step's weight of the coarser levels.
    """
    baselines, variances = levels[-1].baselines, levels[-1].variances
    k = float(config.min_bin_samples)
    for level in reversed(levels[:-1]):
        if config.bin_fallback == "replace":
            enough = level.step_counts >= k
            baselines = np.where(enough, level.baselines, baselines)
            if variances is not None:
                variances = np.where(enough, level.variances, variances)
        else:
            with np.errstate(invalid="ignore"):
                baselines = (level.weights * level.baselines + k * baselines) / (level.weights + k)
                if variances is not None:
                    variances = (level.step_counts * level.variances + k * variances) / (level.step_counts + k)
    fine = levels[0]
    coarse_weight = (fine.step_counts < k) if config.bin_fallback == "replace" else k / (fine.weights + k)
    return baselines, variances, coarse_weight


def no_signal_steps(returns: np.ndarray, advantages: np.ndarray) -> np.ndarray:
    """
    The steps whose return equals their baseline up to the rounding of a bin mean: ``|R - b|`` within
    :data:`NO_SIGNAL_RTOL` of ``|R|``. These are the steps of bins whose samples are all equal, a bin of one
    trajectory included; their advantage carries no signal, and :func:`group_advantages` sets it to exactly 0.

    :param returns: Returns ``R``, any shape.
    :param advantages: ``R - b``, the same shape.
    :return: A bool array of that shape.
    """
    tolerance = np.abs(returns)
    tolerance *= NO_SIGNAL_RTOL
    return np.abs(advantages) <= tolerance


def group_advantages(
    rewards: np.ndarray,
    episode_starts: np.ndarray,
    bin_keys: np.ndarray,
    gamma: float,
    keys_include_time: bool = False,
    valid: np.ndarray | None = None,
    config: EstimatorConfig = ALGORITHM_2,
    coarse_keys: Sequence[tuple[np.ndarray, bool]] = (),
    history: BinHistory | None = None,
) -> GroupAdvantages:
    """
    GPG advantages ``A = R - b(f(s, t))`` with the group baseline of Algorithm 2.

    1. ``R`` is the discounted return inside each trajectory (:func:`discounted_returns`).
    2. Each trajectory inserts ``R`` into bin ``f(s_t, t)`` at its first visit of that bin only.
    3. ``b(k)`` is the mean of the returns inserted into bin ``k`` over the whole group.
    4. Every step, first visit or not, gets ``A = R - b(f(s_t, t))``; a step whose return equals its baseline
       up to rounding (:func:`no_signal_steps`) gets exactly 0.

    ``config`` selects the variants of :class:`EstimatorConfig`; its defaults are exactly the steps above.

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
    :param config: The estimator variants (:class:`EstimatorConfig`).
    :param coarse_keys: The coarser levels of the sparse-bin fallback, finest first: ``(keys, keys_include_time)``
        with keys shaped like ``bin_keys`` (for space-time binning: the time keys, then the universal keys; see
        :attr:`sb3_gpg.binning.Binning.coarser`). Each is binned like the fine level, with its own first visits.
        Only read when ``config`` turns the fallback on.
    :param history: The decayed samples of the earlier rollouts' bins (the ``history`` of the previous call's
        result), read with ``config.history_weight > 0``.
    :return: returns, advantages and baselines as ``(n_steps, n_envs)`` float64 arrays, and the group's
        :class:`GroupStats`.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    shape = rewards.shape
    n = rewards.size
    returns = discounted_returns(rewards, episode_starts, gamma).ravel()
    trajectory = trajectory_ids(episode_starts).ravel()
    group_mask = None if valid is None else np.asarray(valid, dtype=bool).ravel()
    in_group = slice(None) if group_mask is None else group_mask

    level_keys = [(bin_keys, keys_include_time)]
    if config.uses_fallback:
        level_keys += list(coarse_keys)
    levels = [
        _bin_level(
            np.asarray(keys).reshape(n, -1),
            include_time,
            trajectory,
            returns,
            group_mask,
            config,
            history=history,
            use_history=index == 0 and config.history_weight > 0,
        )
        for index, (keys, include_time) in enumerate(level_keys)
    ]
    fallback_share = 0.0
    if len(levels) == 1:
        baselines, variances = levels[0].baselines, levels[0].variances
    else:
        baselines, variances, coarse_weight = _combine_levels(levels, config)
        fallback_share = float(np.mean(coarse_weight[in_group])) if coarse_weight[in_group].size else 0.0
    advantages = returns - baselines
    no_signal = no_signal_steps(returns, advantages)
    if variances is not None:
        no_signal |= variances == 0
        advantages = np.divide(advantages, np.sqrt(variances) + SCALE_EPS, out=advantages, where=~no_signal)
    np.copyto(advantages, 0.0, where=no_signal)
    if group_mask is not None:
        advantages[~group_mask] = 0.0
        baselines[~group_mask] = 0.0

    counts, step_counts = levels[0].counts, levels[0].step_counts[in_group]
    used = counts > 0
    group_baselines = baselines[in_group]
    group_advs = advantages[in_group]
    steps = group_advs.size

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if steps else 0.0

    def std(values: np.ndarray) -> float:
        return float(values.std()) if steps else 0.0

    stats = GroupStats(
        steps=steps,
        trajectories=int(np.count_nonzero(np.bincount(trajectory[in_group]))),
        bins=int(used.sum()),
        mean_samples_per_bin=float(counts[used].mean()) if used.any() else 0.0,
        single_sample_share=mean(step_counts == 1),
        no_signal_share=mean(no_signal[in_group]),
        baseline_mean=mean(group_baselines),
        baseline_std=std(group_baselines),
        advantage_mean=mean(group_advs),
        advantage_std=std(group_advs),
        fallback_share=fallback_share,
    )
    return GroupAdvantages(
        returns.reshape(shape), advantages.reshape(shape), baselines.reshape(shape), stats, levels[0].history
    )

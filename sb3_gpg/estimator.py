"""The GPG advantage estimator (paper Algorithm 2) as pure, vectorized functions of arrays.

Rollouts are laid out as SB3 stores them: ``(n_steps, n_envs)``, one column per env, rows in time order.
A *trajectory* is a maximal run of one env's steps inside the rollout that belong to one episode; it starts
at row 0 or wherever ``episode_starts`` is set. Nothing here knows about SB3 objects, so the tests call
these functions directly against a plain loop-based implementation of Algorithm 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


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
        for column, column_low, span in zip(columns[1:], low[1:], spans[:-1]):
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


def group_advantages(
    rewards: np.ndarray,
    episode_starts: np.ndarray,
    bin_keys: np.ndarray,
    gamma: float,
    keys_include_time: bool = False,
    valid: np.ndarray | None = None,
) -> GroupAdvantages:
    """
    GPG advantages ``A = R - b(f(s, t))`` with the group baseline of Algorithm 2.

    1. ``R`` is the discounted return inside each trajectory (:func:`discounted_returns`).
    2. Each trajectory inserts ``R`` into bin ``f(s_t, t)`` at its first visit of that bin only.
    3. ``b(k)`` is the mean of the returns inserted into bin ``k`` over the whole group.
    4. Every step, first visit or not, gets ``A = R - b(f(s_t, t))``.

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
    :return: returns, advantages and baselines as ``(n_steps, n_envs)`` float64 arrays, and the group's
        :class:`GroupStats`.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    shape = rewards.shape
    n = rewards.size
    returns = discounted_returns(rewards, episode_starts, gamma)
    keys = np.asarray(bin_keys).reshape(n, -1)
    bins, n_bins = bin_index(keys)
    trajectory = trajectory_ids(episode_starts).ravel()
    flat_returns = returns.ravel()
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
    )
    return GroupAdvantages(returns, advantages.reshape(shape), baselines.reshape(shape), stats)

"""The vectorized estimator against a plain, loop-based implementation of Algorithm 2."""

from collections import defaultdict

import hypothesis.strategies as st
import numpy as np
import pytest
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays

from sb3_gpg.arguments import ArgumentError
from sb3_gpg.binning import make_binning
from sb3_gpg.estimator import NO_SIGNAL_RTOL, EstimatorConfig, bin_index, discounted_returns, group_advantages, trajectory_ids


def trajectories_and_returns(rewards, episode_starts, gamma):
    """The trajectories as lists of (step, env), each step's trajectory index and each step's return."""
    n_steps, n_envs = rewards.shape
    trajectories = []
    for env in range(n_envs):
        for step in range(n_steps):
            if step == 0 or episode_starts[step, env]:
                trajectories.append([])
            trajectories[-1].append((step, env))
    trajectory_of, returns = {}, {}
    for index, trajectory in enumerate(trajectories):
        future = 0.0
        for step, env in reversed(trajectory):
            future = rewards[step, env] + gamma * future
            returns[step, env] = future
            trajectory_of[step, env] = index
    return trajectories, trajectory_of, returns


def reference_algorithm2(rewards, episode_starts, keys, gamma, valid=None):
    """Algorithm 2 written out with loops and dicts, straight from the paper."""
    n_steps, n_envs = rewards.shape
    valid = np.ones_like(rewards, dtype=bool) if valid is None else valid
    trajectories, _, returns = trajectories_and_returns(rewards, episode_starts, gamma)

    bins = defaultdict(list)
    for trajectory in trajectories:
        visited = set()
        for step, env in trajectory:
            if valid[step, env] and keys[step][env] not in visited:
                visited.add(keys[step][env])
                bins[keys[step][env]].append(returns[step, env])

    advantages = np.zeros_like(rewards, dtype=np.float64)
    for (step, env), ret in returns.items():
        if valid[step, env]:
            advantage = ret - np.mean(bins[keys[step][env]])
            # A return equal to its baseline up to the rounding of the mean carries no signal: exactly 0.
            advantages[step, env] = 0.0 if abs(advantage) <= NO_SIGNAL_RTOL * abs(ret) else advantage
    ret_array = np.array([[returns[step, env] for env in range(n_envs)] for step in range(n_steps)])
    return ret_array, advantages


def episode_times_of(episode_starts, initial_times):
    times = np.zeros(episode_starts.shape, dtype=np.int64)
    current = np.asarray(initial_times, dtype=np.int64)
    for step in range(episode_starts.shape[0]):
        current = np.where(episode_starts[step], 0, current)
        times[step] = current
        current = current + 1
    return times


@st.composite
def rollouts(draw, n_dims=2, reward_elements=None):
    n_steps = draw(st.integers(1, 12))
    n_envs = draw(st.integers(1, 5))
    elements = st.floats(-5, 5, width=32) if reward_elements is None else reward_elements
    rewards = draw(arrays(np.float64, (n_steps, n_envs), elements=elements))
    episode_starts = draw(arrays(np.bool_, (n_steps, n_envs)))
    # Episodes that started in an earlier rollout continue their time count.
    initial_times = draw(arrays(np.int64, (n_envs,), elements=st.integers(0, 4)))
    # Coarse integer-valued observations so that spatial bins are shared and revisited.
    observations = draw(arrays(np.float64, (n_steps, n_envs, n_dims), elements=st.integers(-2, 2).map(float)))
    gamma = draw(st.sampled_from([1.0, 0.99, 0.5]))
    return rewards, episode_starts, episode_times_of(episode_starts, initial_times), observations, gamma


def keys_as_tuples(keys, n_steps, n_envs):
    keys = keys.reshape(n_steps, n_envs, -1)
    return [[tuple(keys[step, env]) for env in range(n_envs)] for step in range(n_steps)]


@pytest.mark.parametrize(
    "name,bin_size", [("time", None), ("none", None), ("space", 1.0), ("space", 0.4), ("space_time", 2.0)]
)
@settings(max_examples=150, deadline=None)
@given(rollout=rollouts())
def test_estimator_matches_algorithm2(name, bin_size, rollout):
    rewards, episode_starts, times, observations, gamma = rollout
    n_steps, n_envs = rewards.shape
    binning = make_binning(name, spaces.Box(-3, 3, (observations.shape[-1],)), bin_size)
    keys = binning(observations.reshape(n_steps * n_envs, -1), times.reshape(-1))

    result = group_advantages(rewards, episode_starts, keys.reshape(n_steps, n_envs, -1), gamma, binning.keys_include_time)
    # The keys_include_time shortcut must not change the result.
    full_search = group_advantages(rewards, episode_starts, keys.reshape(n_steps, n_envs, -1), gamma, False)
    expected_returns, expected_advantages = reference_algorithm2(
        rewards, episode_starts, keys_as_tuples(keys, n_steps, n_envs), gamma
    )
    np.testing.assert_allclose(result.returns, expected_returns, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(result.advantages, expected_advantages, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(full_search.advantages, result.advantages, rtol=1e-12, atol=1e-12)


@settings(max_examples=150, deadline=None)
@given(rollout=rollouts(n_dims=1), data=st.data())
def test_state_binning_and_group_mask_match_algorithm2(rollout, data):
    """State binning revisits bins inside a trajectory; a group mask drops whole trajectories."""
    rewards, episode_starts, times, observations, gamma = rollout
    n_steps, n_envs = rewards.shape
    binning = make_binning("state", spaces.Discrete(5, start=-2))
    keys = binning(observations.reshape(-1, 1).astype(np.int64), times.reshape(-1))
    trajectory = trajectory_ids(episode_starts)
    n_trajectories = int(trajectory.max()) + 1
    kept = np.array(data.draw(st.lists(st.booleans(), min_size=n_trajectories, max_size=n_trajectories)))
    valid = kept[trajectory]

    result = group_advantages(rewards, episode_starts, keys.reshape(n_steps, n_envs, -1), gamma, valid=valid)
    _, expected_advantages = reference_algorithm2(rewards, episode_starts, keys_as_tuples(keys, n_steps, n_envs), gamma, valid)
    np.testing.assert_allclose(result.advantages, expected_advantages, rtol=1e-9, atol=1e-9)
    assert result.stats.trajectories == int(kept.sum())


def test_universal_binning_single_trajectory_gives_return_minus_first_return():
    rewards = np.array([[1.0], [2.0], [0.5], [4.0]])
    starts = np.zeros((4, 1), dtype=bool)
    keys = np.zeros((4, 1), dtype=np.int64)
    result = group_advantages(rewards, starts, keys, gamma=0.9)
    returns = discounted_returns(rewards, starts, 0.9)
    np.testing.assert_allclose(result.advantages[:, 0], returns[:, 0] - returns[0, 0])


def test_lonely_bin_gives_zero_advantage_and_is_counted():
    # Two envs, time binning: env 0 runs times 0, 1, 2 while env 1 restarts after two steps (0, 1, 0), so
    # bin t=2 holds one sample and bins t=0 (three samples) and t=1 (two) are shared.
    rewards = np.ones((3, 2))
    starts = np.array([[True, True], [False, False], [False, True]])
    times = episode_times_of(starts, [0, 0])
    result = group_advantages(rewards, starts, times, gamma=1.0, keys_include_time=True)
    # Bin t=2 holds env 0's step alone: its advantage is exactly zero.
    assert result.advantages[2, 0] == 0.0
    assert result.stats.single_sample_share == pytest.approx(1 / 6)
    assert result.stats.bins == 3
    assert result.stats.trajectories == 3


def test_time_limit_ends_return_without_bootstrap():
    # A time limit is an episode end like any other: the next step starts a new trajectory, so the last
    # return of the truncated episode is its last reward alone (continuation 0, no critic to bootstrap).
    rewards = np.array([[1.0], [1.0], [1.0], [1.0]])
    starts = np.array([[True], [False], [True], [False]])
    returns = discounted_returns(rewards, starts, 0.99)
    np.testing.assert_allclose(returns[:, 0], [1.99, 1.0, 1.99, 1.0])


def test_trajectory_ids_are_env_major_and_restart_at_row_zero():
    starts = np.array([[False, True], [True, False], [False, False]])
    np.testing.assert_array_equal(trajectory_ids(starts), [[0, 2], [1, 2], [1, 2]])


@pytest.mark.parametrize(
    "keys",
    [
        np.array([3, 3, 7, 1_000_000_000_000, 3]),
        np.array([[1, 2], [1, 2], [2, 1], [-5, 9], [1, 2]]),
        np.array([[2**40, 1], [-(2**40), 1], [2**40, 1], [0, 0], [2**40, 1]]),  # too wide for mixed radix
        np.array([0.5, 0.5, 0.25, 1e9, 0.5]),
    ],
)
def test_bin_index_groups_equal_keys(keys):
    index, n_bins = bin_index(keys)
    rows = [tuple(np.atleast_1d(k)) for k in keys]
    for i in range(len(rows)):
        for j in range(len(rows)):
            assert (index[i] == index[j]) == (rows[i] == rows[j])
    assert index.min() >= 0 and index.max() < n_bins


def estimate(rewards, starts, keys, gamma, keys_include_time=False, valid=None, coarse=(), **variant):
    """``group_advantages`` with the variant's options as an :class:`EstimatorConfig` and coarser levels
    ``(keys, keys_include_time=False)``."""
    coarse_keys = [(level, False) for level in coarse]
    return group_advantages(
        rewards, starts, keys, gamma, keys_include_time, valid, config=EstimatorConfig(**variant), coarse_keys=coarse_keys
    )


# --- Estimator variants: a second loop-based reference, written from the docstring, not from the vectorized code ---


def reference_variants(
    rewards,
    episode_starts,
    level_keys,
    gamma,
    valid=None,
    baseline="mean",
    advantage_scale="none",
    min_bin_samples=0,
    bin_fallback="replace",
    eps=1e-8,
):
    """
    Every estimator variant with loops and dicts. ``level_keys`` lists the key grids (``[step][env]`` tuples)
    of each binning level, finest first; the coarser ones are only used by the fallback.
    """
    valid = np.ones_like(rewards, dtype=bool) if valid is None else valid
    trajectories, trajectory_of, returns = trajectories_and_returns(rewards, episode_starts, gamma)

    # samples[level][key][trajectory] = the return the trajectory inserted at its first visit of the bin
    samples = []
    for keys in level_keys:
        level = defaultdict(dict)
        for index, trajectory in enumerate(trajectories):
            for step, env in trajectory:
                if valid[step, env] and index not in level[keys[step][env]]:
                    level[keys[step][env]][index] = returns[step, env]
        samples.append(level)

    def bin_figures(level, step, env):
        """(trajectories in the bin, baseline, returns averaged into it, population variance)."""
        inserted = samples[level][level_keys[level][step][env]]
        values = list(inserted.values())
        others = [value for index, value in inserted.items() if index != trajectory_of[step, env]]
        if baseline == "leave_one_out" and others:
            step_baseline, weight = float(np.mean(others)), len(others)
        elif baseline == "leave_one_out":
            step_baseline, weight = float(np.mean(values)), 0
        else:
            step_baseline, weight = float(np.mean(values)), len(values)
        variance = float(np.var(values)) if len(set(values)) > 1 else 0.0
        return len(values), step_baseline, weight, variance

    k = min_bin_samples
    fallback = len(level_keys) > 1 and k >= (2 if bin_fallback == "replace" else 1)
    advantages = np.zeros_like(rewards, dtype=np.float64)
    for (step, env), ret in returns.items():
        if not valid[step, env]:
            continue
        figures = [bin_figures(level, step, env) for level in range(len(level_keys) if fallback else 1)]
        if not fallback:
            _, step_baseline, _, variance = figures[0]
        elif bin_fallback == "replace":
            chosen = next((f for f in figures if f[0] >= k), figures[-1])
            _, step_baseline, _, variance = chosen
        else:
            _, step_baseline, _, variance = figures[-1]
            for count, level_baseline, weight, level_variance in reversed(figures[:-1]):
                step_baseline = (weight * level_baseline + k * step_baseline) / (weight + k)
                variance = (count * level_variance + k * variance) / (count + k)
        advantage = ret - step_baseline
        if abs(advantage) <= NO_SIGNAL_RTOL * abs(ret):  # no signal: exactly 0, as in reference_algorithm2
            advantage = 0.0
        if advantage_scale == "bin_std":
            advantage = advantage / (np.sqrt(variance) + eps) if variance > 0 else 0.0
        advantages[step, env] = advantage
    return advantages


# Multiples of 1/4: exact in binary, so equal returns are common (the zero-spread rule of "bin_std" is exercised)
# and distinct returns are never 1e-8 apart, where dividing by the bin's std amplifies any float rounding into
# a 1e-7 disagreement between two correct implementations.
QUARTER_REWARDS = st.integers(-20, 20).map(lambda x: x / 4)

VARIANTS = [
    dict(baseline="leave_one_out"),
    dict(advantage_scale="bin_std"),
    dict(baseline="leave_one_out", advantage_scale="bin_std"),
    dict(min_bin_samples=2),
    dict(min_bin_samples=3, baseline="leave_one_out", advantage_scale="bin_std"),
    dict(min_bin_samples=1, bin_fallback="shrink"),
    dict(min_bin_samples=3, bin_fallback="shrink", baseline="leave_one_out"),
    dict(min_bin_samples=2, bin_fallback="shrink", advantage_scale="bin_std"),
]


def levels_of(binning, observations, times):
    """Keys of a binning and of its coarser levels, as ``(n_steps, n_envs, -1)`` arrays."""
    n_steps, n_envs = times.shape
    flat_obs, flat_times = observations.reshape(n_steps * n_envs, -1), times.reshape(-1)
    return [level(flat_obs, flat_times).reshape(n_steps, n_envs, -1) for level in (binning, *binning.coarser)]


def variant_result(rollout_arrays, binning, levels, variant, valid=None, shortcut=True):
    rewards, episode_starts, gamma = rollout_arrays
    coarse = [(keys, level.keys_include_time and shortcut) for keys, level in zip(levels[1:], binning.coarser, strict=True)]
    return group_advantages(
        rewards,
        episode_starts,
        levels[0],
        gamma,
        binning.keys_include_time and shortcut,
        valid,
        config=EstimatorConfig(**variant),
        coarse_keys=coarse,
    )


@pytest.mark.parametrize("name,bin_size", [("time", None), ("none", None), ("space", 1.0), ("space_time", 2.0)])
@settings(max_examples=150, deadline=None)
@given(rollout=rollouts(reward_elements=QUARTER_REWARDS), variant=st.sampled_from(VARIANTS))
def test_estimator_variants_match_reference(name, bin_size, rollout, variant):
    rewards, episode_starts, times, observations, gamma = rollout
    n_steps, n_envs = rewards.shape
    binning = make_binning(name, spaces.Box(-3, 3, (observations.shape[-1],)), bin_size)
    levels = levels_of(binning, observations, times)

    result = variant_result((rewards, episode_starts, gamma), binning, levels, variant)
    full_search = variant_result((rewards, episode_starts, gamma), binning, levels, variant, shortcut=False)
    expected = reference_variants(
        rewards, episode_starts, [keys_as_tuples(keys, n_steps, n_envs) for keys in levels], gamma, **variant
    )
    np.testing.assert_allclose(result.advantages, expected, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(full_search.advantages, result.advantages, rtol=1e-9, atol=1e-9)


@settings(max_examples=150, deadline=None)
@given(rollout=rollouts(n_dims=1, reward_elements=QUARTER_REWARDS), variant=st.sampled_from(VARIANTS), data=st.data())
def test_estimator_variants_with_revisits_and_group_mask_match_reference(rollout, variant, data):
    """State binning revisits bins inside a trajectory (leave-one-out must leave out the first visit's
    return); a group mask drops whole trajectories."""
    rewards, episode_starts, times, observations, gamma = rollout
    n_steps, n_envs = rewards.shape
    binning = make_binning("state", spaces.Discrete(5, start=-2))
    levels = levels_of(binning, observations.astype(np.int64), times)
    trajectory = trajectory_ids(episode_starts)
    n_trajectories = int(trajectory.max()) + 1
    kept = np.array(data.draw(st.lists(st.booleans(), min_size=n_trajectories, max_size=n_trajectories)))
    valid = kept[trajectory]

    result = variant_result((rewards, episode_starts, gamma), binning, levels, variant, valid=valid)
    expected = reference_variants(
        rewards, episode_starts, [keys_as_tuples(keys, n_steps, n_envs) for keys in levels], gamma, valid, **variant
    )
    np.testing.assert_allclose(result.advantages, expected, rtol=1e-7, atol=1e-7)
    assert np.all(result.advantages[~valid] == 0)


@pytest.mark.parametrize(
    "variant",
    [dict(), dict(min_bin_samples=1), dict(min_bin_samples=0, bin_fallback="shrink"), dict(min_bin_samples=5)],
    ids=["default", "replace-k1", "shrink-k0", "no-coarser-keys"],
)
@settings(max_examples=50, deadline=None)
@given(rollout=rollouts())
def test_options_that_change_nothing_give_algorithm2_exactly(variant, rollout):
    rewards, episode_starts, times, _, gamma = rollout
    coarse = [] if variant.get("min_bin_samples") == 5 else [np.zeros_like(times)]
    plain = group_advantages(rewards, episode_starts, times, gamma, True)
    result = estimate(rewards, episode_starts, times, gamma, True, coarse=coarse, **variant)
    np.testing.assert_array_equal(result.advantages, plain.advantages)
    assert result.stats == plain.stats


@settings(max_examples=100, deadline=None)
@given(rollout=rollouts())
def test_leave_one_out_scales_first_visit_advantages_by_n_over_n_minus_one(rollout):
    rewards, episode_starts, times, _, gamma = rollout
    mean = group_advantages(rewards, episode_starts, times, gamma, True)
    loo = estimate(rewards, episode_starts, times, gamma, True, baseline="leave_one_out")
    n = np.bincount(times.ravel())[times]  # trajectories per time bin: every step is a first visit
    factor = np.where(n > 1, n / np.maximum(n - 1, 1), 1.0)
    np.testing.assert_allclose(loo.advantages, mean.advantages * factor, rtol=1e-9, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(rollout=rollouts(), data=st.data())
def test_leave_one_out_baseline_ignores_the_trajectorys_own_rewards(rollout, data):
    """The U-statistic property: a trajectory's baselines do not move when its own rewards change."""
    rewards, episode_starts, times, _, gamma = rollout
    trajectory = trajectory_ids(episode_starts)
    chosen = trajectory == data.draw(st.integers(0, int(trajectory.max())))
    changed = np.where(chosen, rewards + data.draw(st.floats(-3, 3)), rewards)
    before = estimate(rewards, episode_starts, times, gamma, True, baseline="leave_one_out")
    after = estimate(changed, episode_starts, times, gamma, True, baseline="leave_one_out")
    shared = chosen & (np.bincount(times.ravel())[times] > 1)
    np.testing.assert_allclose(after.baselines[shared], before.baselines[shared], rtol=1e-9, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(rollout=rollouts(reward_elements=QUARTER_REWARDS))
def test_bin_std_gives_each_bin_zero_mean_unit_std(rollout):
    rewards, episode_starts, times, _, gamma = rollout
    result = estimate(rewards, episode_starts, times, gamma, True, advantage_scale="bin_std")
    returns = result.returns
    for t in np.unique(times):
        in_bin = times == t
        if np.ptp(returns[in_bin]) == 0:
            assert np.all(result.advantages[in_bin] == 0)  # one trajectory, or all returns equal: no signal
        else:
            std = returns[in_bin].std()
            assert result.advantages[in_bin].mean() == pytest.approx(0, abs=1e-9)
            assert result.advantages[in_bin].std() == pytest.approx(std / (std + 1e-8), rel=1e-9)


def lonely_bin_rollout():
    """Env 0 runs times 0, 1, 2 while env 1 restarts after two steps (0, 1, 0): bin t=2 holds one sample."""
    rewards = np.array([[1.0, 2.0], [3.0, 0.0], [5.0, 4.0]])
    starts = np.array([[True, True], [False, False], [False, True]])
    return rewards, starts, episode_times_of(starts, [0, 0])


def test_replace_fallback_gives_the_lonely_bin_the_universal_baseline():
    rewards, starts, times = lonely_bin_rollout()
    universal = np.zeros_like(times)
    result = estimate(rewards, starts, times, 1.0, True, min_bin_samples=2, coarse=[universal])
    # Universal bin: one first visit per trajectory, at its first step: returns 9 (env 0), 2 and 4 (env 1).
    assert result.advantages[2, 0] == pytest.approx(5.0 - (9 + 2 + 4) / 3)
    plain = group_advantages(rewards, starts, times, 1.0, True)
    assert plain.advantages[2, 0] == 0.0
    np.testing.assert_array_equal(result.advantages[:2], plain.advantages[:2])  # shared bins keep theirs
    assert result.stats.fallback_share == pytest.approx(1 / 6)


def test_shrink_fallback_weights_fine_and_coarse_by_sample_count():
    rewards, starts, times = lonely_bin_rollout()
    universal = np.zeros_like(times)
    k = 2
    result = estimate(rewards, starts, times, 1.0, True, min_bin_samples=k, bin_fallback="shrink", coarse=[universal])
    coarse = (9 + 2 + 4) / 3
    assert result.baselines[2, 0] == pytest.approx((1 * 5.0 + k * coarse) / (1 + k))
    assert result.baselines[0, 0] == pytest.approx((3 * (9 + 2 + 4) / 3 + k * coarse) / (3 + k))
    # Leave-one-out: the lonely bin has no other sample, so it takes the coarser baseline whole.
    shrink = dict(min_bin_samples=k, bin_fallback="shrink")
    loo = estimate(rewards, starts, times, 1.0, True, coarse=[universal], baseline="leave_one_out", **shrink)
    assert loo.baselines[2, 0] == pytest.approx((2 + 4) / 2)  # universal bin without env 0's own sample (9)


def test_replace_with_unreachable_k_is_the_coarsest_binning():
    rewards, starts, times = lonely_bin_rollout()
    universal = np.zeros_like(times)
    for variant in (dict(), dict(baseline="leave_one_out"), dict(advantage_scale="bin_std")):
        result = estimate(rewards, starts, times, 0.9, True, min_bin_samples=100, coarse=[universal], **variant)
        coarsest = estimate(rewards, starts, universal, 0.9, **variant)
        np.testing.assert_allclose(result.advantages, coarsest.advantages, rtol=1e-12, atol=1e-12)


def test_leave_one_out_revisit_leaves_out_its_trajectorys_first_visit():
    # Universal binning: env 0's trajectory inserts its first return (6) only; env 1's inserts 10.
    rewards = np.array([[1.0, 4.0], [2.0, 3.0], [3.0, 3.0]])
    starts = np.zeros((3, 2), dtype=bool)
    keys = np.zeros((3, 2), dtype=np.int64)
    result = estimate(rewards, starts, keys, 1.0, baseline="leave_one_out")
    np.testing.assert_allclose(result.baselines, [[10.0, 6.0], [10.0, 6.0], [10.0, 6.0]])
    alone = estimate(rewards[:, :1], starts[:, :1], keys[:, :1], 1.0, baseline="leave_one_out")
    np.testing.assert_allclose(alone.advantages[:, 0], [0.0, 5.0 - 6.0, 3.0 - 6.0])  # as the mean baseline


def test_steps_without_signal_get_exactly_zero_and_are_counted():
    rewards, starts, times = lonely_bin_rollout()
    result = group_advantages(rewards, starts, times, 1.0, True)
    assert result.advantages[2, 0] == 0.0  # the lonely bin t=2
    assert np.all(result.advantages[:2] != 0)
    assert result.stats.no_signal_share == pytest.approx(1 / 6)
    # Ten equal returns of 0.1: their float mean is not exactly 0.1, yet the advantages are exactly 0, not rounding.
    returns = np.full(10, 0.1)
    assert np.any(returns - np.bincount(np.zeros(10, dtype=int), weights=returns)[0] / 10 != 0)  # a sequential sum
    equal = group_advantages(np.full((1, 10), 0.1), np.ones((1, 10), dtype=bool), np.zeros((1, 10)), 1.0, True)
    assert np.all(equal.advantages == 0)
    assert equal.stats.no_signal_share == 1.0


@settings(max_examples=100, deadline=None)
@given(rollout=rollouts(reward_elements=QUARTER_REWARDS), variant=st.sampled_from([{}, *VARIANTS]))
def test_no_signal_share_is_the_share_of_steps_whose_return_equals_their_baseline(rollout, variant):
    rewards, episode_starts, times, _, gamma = rollout
    result = estimate(rewards, episode_starts, times, gamma, True, coarse=[np.zeros_like(times)], **variant)
    returns, baselines = result.returns, result.baselines
    equal = np.abs(returns - baselines) <= NO_SIGNAL_RTOL * np.abs(returns)
    if variant.get("advantage_scale") == "bin_std":
        equal |= result.advantages == 0
    assert result.stats.no_signal_share == pytest.approx(equal.mean())
    assert np.all(result.advantages[equal] == 0)


@pytest.mark.parametrize(
    "option,value,match",
    [
        ("baseline", "loo", r"Unknown baseline='loo': valid values are 'mean', 'leave_one_out'"),
        ("advantage_scale", "std", r"Unknown advantage_scale='std': valid values are 'none', 'bin_std'"),
        ("bin_fallback", "coarse", r"Unknown bin_fallback='coarse': valid values are 'replace', 'shrink'"),
        ("min_bin_samples", -1, r"min_bin_samples=-1 must be an integer >= 0"),
        ("min_bin_samples", 2.5, r"min_bin_samples=2.5 must be an integer >= 0"),
    ],
)
def test_bad_estimator_options(option, value, match):
    with pytest.raises(ArgumentError, match=match) as error:
        EstimatorConfig(**{option: value})
    assert error.value.argument == option


@pytest.mark.parametrize(
    "name,coarser",
    [("time", ["none"]), ("none", []), ("space", ["none"]), ("space_time", ["time", "none"]), ("state", ["none"])],
)
def test_binnings_expose_their_coarser_levels(name, coarser):
    space = spaces.Discrete(4) if name == "state" else spaces.Box(-1, 1, (2,))
    binning = make_binning(name, space)
    assert [level.name for level in binning.coarser] == coarser
    assert [level.name for level in make_binning(lambda obs, t: t, space).coarser] == ["none"]


# --- Bin history: earlier rollouts' samples, decayed ---


def reference_history(rollouts, beta, baseline="mean"):
    """Algorithm 2 over successive rollouts whose bins keep their past samples with weight beta ** age: loops and
    dicts. ``rollouts`` holds ``(rewards, episode_starts, keys, gamma)``; returns each rollout's advantages."""
    past_sums, past_counts, results = defaultdict(float), defaultdict(float), []
    for rewards, episode_starts, keys, gamma in rollouts:
        trajectories, trajectory_of, returns = trajectories_and_returns(rewards, episode_starts, gamma)
        samples = defaultdict(dict)  # key -> {trajectory: first-visit return}
        for index, trajectory in enumerate(trajectories):
            for step, env in trajectory:
                samples[keys[step][env]].setdefault(index, returns[step, env])
        advantages = np.zeros_like(rewards, dtype=np.float64)
        for (step, env), ret in returns.items():
            key = keys[step][env]
            total = sum(samples[key].values()) + beta * past_sums[key]
            count = len(samples[key]) + beta * past_counts[key]
            if baseline == "leave_one_out" and count > 1:
                own = samples[key][trajectory_of[step, env]]
                total, count = total - own, count - 1
            advantage = ret - total / count
            advantages[step, env] = 0.0 if abs(advantage) <= NO_SIGNAL_RTOL * abs(ret) else advantage
        for key in set(past_sums) | set(samples):
            past_sums[key] = beta * past_sums[key] + sum(samples[key].values()) if key in samples else beta * past_sums[key]
            past_counts[key] = beta * past_counts[key] + len(samples[key]) if key in samples else beta * past_counts[key]
        results.append(advantages)
    return results


@settings(max_examples=100, deadline=None)
@given(
    rollouts=st.lists(rollouts(n_dims=1, reward_elements=QUARTER_REWARDS), min_size=3, max_size=3),
    beta=st.sampled_from([0.5, 0.9]),
    baseline=st.sampled_from(["mean", "leave_one_out"]),
)
def test_history_matches_a_loop_over_successive_rollouts(rollouts, beta, baseline):
    """State binning (revisits) over three rollouts of different shapes: each bin's baseline averages its current
    samples and its decayed past ones."""
    config = EstimatorConfig(baseline=baseline, history_weight=beta)
    binning = make_binning("state", spaces.Discrete(5, start=-2))
    history, reference_input, results = None, [], []
    for rewards, episode_starts, times, observations, gamma in rollouts:
        n_steps, n_envs = rewards.shape
        keys = binning(observations.reshape(-1, 1).astype(np.int64), times.reshape(-1)).reshape(n_steps, n_envs, -1)
        result = group_advantages(rewards, episode_starts, keys, gamma, config=config, history=history)
        history = result.history
        results.append(result.advantages)
        reference_input.append((rewards, episode_starts, keys_as_tuples(keys, n_steps, n_envs), gamma))
    for actual, expected in zip(results, reference_history(reference_input, beta, baseline), strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-7, atol=1e-7)


def test_history_gives_a_lone_trajectory_a_baseline_from_its_past():
    """One env, time bins: alone, every advantage is 0; with history, the second rollout's time bins compare
    with the first's returns."""
    rewards = np.array([[1.0], [2.0], [3.0]])
    starts = np.array([[True], [False], [False]])
    times = np.array([[0], [1], [2]])
    config = EstimatorConfig(history_weight=0.5)
    first = group_advantages(rewards, starts, times, 1.0, True, config=config)
    assert np.all(first.advantages == 0)
    second = group_advantages(rewards + 1.0, starts, times, 1.0, True, config=config, history=first.history)
    # returns 9, 7, 4 now and 6, 5, 3 before: (9 + 0.5 * 6) / 1.5 = 8, (7 + 0.5 * 5) / 1.5, (4 + 0.5 * 3) / 1.5
    np.testing.assert_allclose(second.baselines[:, 0], [8.0, 9.5 / 1.5, 5.5 / 1.5])
    assert second.history.counts.tolist() == [1.5, 1.5, 1.5]


def test_zero_history_weight_is_algorithm2_and_keeps_no_history():
    rewards, starts, times = lonely_bin_rollout()
    plain = group_advantages(rewards, starts, times, 1.0, True)
    assert plain.history is None
    with_past = group_advantages(rewards, starts, times, 1.0, True, history=plain.history)
    np.testing.assert_array_equal(with_past.advantages, plain.advantages)


@pytest.mark.parametrize("value", [-0.1, 1.0, "0.5", True])
def test_bad_history_weight_is_refused(value):
    with pytest.raises(ArgumentError, match=r"history_weight=.* must be a number in \[0, 1\)"):
        EstimatorConfig(history_weight=value)

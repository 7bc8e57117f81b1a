"""The vectorized estimator against a plain, loop-based implementation of Algorithm 2."""

from collections import defaultdict

import hypothesis.strategies as st
import numpy as np
import pytest
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays

from sb3_gpg.binning import make_binning
from sb3_gpg.estimator import bin_index, discounted_returns, group_advantages, trajectory_ids


def reference_algorithm2(rewards, episode_starts, keys, gamma, valid=None):
    """Algorithm 2 written out with loops and dicts, straight from the paper."""
    n_steps, n_envs = rewards.shape
    valid = np.ones_like(rewards, dtype=bool) if valid is None else valid
    trajectories = []
    for env in range(n_envs):
        for step in range(n_steps):
            if step == 0 or episode_starts[step, env]:
                trajectories.append([])
            trajectories[-1].append((step, env))

    returns = {}
    for trajectory in trajectories:
        future = 0.0
        for step, env in reversed(trajectory):
            future = rewards[step, env] + gamma * future
            returns[step, env] = future

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
            advantages[step, env] = ret - np.mean(bins[keys[step][env]])
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
def rollouts(draw, n_dims=2):
    n_steps = draw(st.integers(1, 12))
    n_envs = draw(st.integers(1, 5))
    rewards = draw(arrays(np.float64, (n_steps, n_envs), elements=st.floats(-5, 5, width=32)))
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


@pytest.mark.parametrize("name,bin_size", [("time", 1.0), ("none", 1.0), ("space", 1.0), ("space", 0.4), ("space_time", 2.0)])
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
    expected_returns, expected_advantages = reference_algorithm2(
        rewards, episode_starts, keys_as_tuples(keys, n_steps, n_envs), gamma, valid
    )
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

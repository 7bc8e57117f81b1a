"""Prop. 2, measured: the one-step GPG gradient converges to the exact policy gradient as the group grows.

The MDP, the exact gradient and the Monte Carlo estimator live in :mod:`sb3_gpg.envs` (``benchmarks/consistency.py``
draws the plot from them); this file pins down the exact gradient and the convergence trend with fixed seeds.

Margins were chosen from 20 sampling seeds and 20 MDP seeds with the same settings (40 groups per size).
Worst cases seen: error ratio N=4096 : N=16 of 0.071 (0.076 over MDP seeds; theory 1/16 = 0.0625), largest
ratio between neighbouring sizes 0.59 (theory 0.5), log-log slopes in [-0.53, -0.47], and relative error at
N=20000 of 0.033 for time and state binning on this MDP.
"""

from __future__ import annotations

import numpy as np
import pytest

from sb3_gpg import envs

MDP_SEED = 0
GROUP_SIZES = [16, 64, 256, 1024, 4096]
REPEATS = 40


@pytest.fixture(scope="module")
def problem():
    mdp = envs.random_mdp(seed=MDP_SEED)
    logits = envs.random_logits(mdp.n_states, mdp.n_actions, seed=MDP_SEED + 1)
    return mdp, logits


@pytest.fixture(scope="module")
def errors(problem):
    mdp, logits = problem
    return envs.relative_errors(mdp, logits, GROUP_SIZES, REPEATS, np.random.default_rng(1000))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_gradient_matches_finite_differences(seed):
    mdp = envs.random_mdp(seed=seed)
    logits = envs.random_logits(mdp.n_states, mdp.n_actions, seed=seed + 1)
    exact = envs.exact_gradient(mdp, logits)
    numeric = envs.finite_difference_gradient(mdp, logits)
    assert np.linalg.norm(exact) > 0.1  # a non-trivial gradient, so the comparison means something
    np.testing.assert_allclose(exact, numeric, rtol=0, atol=1e-8 * np.abs(exact).max())


def test_sampler_matches_exact_distributions(problem):
    # The estimator is only as good as the sampler: check state distributions and the mean return.
    mdp, logits = problem
    n = 100_000
    rollouts = envs.sample_trajectories(mdp, logits, n, np.random.default_rng(7))
    visits, _, _ = envs.dynamic_programming(mdp, logits)
    empirical = np.stack([np.bincount(row, minlength=mdp.n_states) / n for row in rollouts.states])
    np.testing.assert_allclose(empirical, visits, atol=5 * np.sqrt(0.25 / n))
    totals = rollouts.rewards.sum(axis=0)
    assert abs(totals.mean() - envs.exact_return(mdp, logits)) < 5 * totals.std() / np.sqrt(n)
    # States are revisited within a trajectory, so state binning exercises the first-visit rule.
    distinct = np.array([len(np.unique(column)) for column in rollouts.states[:, :1000].T])
    assert np.mean(distinct < mdp.horizon) > 0.5


@pytest.mark.parametrize("estimator", ["time", "state", "state_time", "none", "reinforce"])
def test_error_falls_with_group_size(errors, estimator):
    mean = errors[estimator].mean(axis=1)
    # Every 4x larger group cuts the mean error (theory: by half); a 256x larger group by at least 8x
    # (theory: 16x), at a log-log rate close to N^{-1/2}.
    assert np.all(mean[1:] < 0.8 * mean[:-1]), mean
    assert mean[-1] < 0.125 * mean[0], mean
    assert -0.65 < envs.loglog_slope(GROUP_SIZES, mean) < -0.35, mean


@pytest.mark.parametrize("estimator", ["time", "state"])
def test_large_group_estimate_is_close(problem, estimator):
    mdp, logits = problem
    truth = envs.exact_gradient(mdp, logits)
    rng = np.random.default_rng(2000)
    for _ in range(3):
        rollouts = envs.sample_trajectories(mdp, logits, 20_000, rng)
        estimate = envs.gpg_gradient(logits, rollouts, estimator)
        assert np.linalg.norm(estimate - truth) / np.linalg.norm(truth) < 0.05

"""A tabular MDP whose policy gradient is known exactly: the oracle that checks GPG's estimator (paper Prop. 2).

On a small finite-horizon MDP with a softmax policy, the exact policy gradient follows from dynamic programming
over ``(t, s)``. The one-step GPG estimator (``rho = 1``)

    g_N = (1/N) sum_n sum_t A_t^n grad log pi(a_t^n | s_t^n),   A_t^n = R_t^n - b_N(f(s_t^n, t)),

is computed from N sampled trajectories with :func:`sb3_gpg.estimator.group_advantages`, so its error against
the exact gradient measures the package's own estimator. The MDP is undiscounted and lasts exactly ``horizon``
steps, the setting of Prop. 2; its states can be revisited within a trajectory, so state binning exercises the
first-visit rule of Algorithm 2.

As SB3 keeps its test environments in ``stable_baselines3.common.envs``, this lives in the package so that the
tests (``tests/test_consistency.py``) and the benchmark (``benchmarks/consistency.py``) share one copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sb3_gpg.estimator import group_advantages

#: Advantage estimators of :func:`gpg_gradient`: GPG with four binnings, and REINFORCE (``A = R``, no baseline).
ESTIMATORS = ("time", "state", "state_time", "none", "reinforce")
#: The binnings of :func:`bin_keys`.
BINNINGS = ("time", "state", "state_time", "none")


@dataclass(frozen=True)
class TabularMDP:
    """
    A finite-horizon MDP with finite state and action sets, undiscounted.

    :param transitions: ``(S, A, S)`` probabilities ``P(s' | s, a)``.
    :param rewards: ``(S, A)`` deterministic rewards ``r(s, a)``.
    :param initial: ``(S,)`` initial-state distribution.
    :param horizon: Every episode lasts exactly this many steps.
    """

    transitions: np.ndarray
    rewards: np.ndarray
    initial: np.ndarray
    horizon: int

    @property
    def n_states(self) -> int:
        return self.rewards.shape[0]

    @property
    def n_actions(self) -> int:
        return self.rewards.shape[1]


@dataclass(frozen=True)
class Rollouts:
    """``N`` complete trajectories as ``(horizon, N)`` arrays: one column per trajectory, rows in time order."""

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray


def random_mdp(n_states: int = 5, n_actions: int = 3, horizon: int = 5, seed: int = 0) -> TabularMDP:
    """
    Draw a random tabular MDP.

    Transition rows are Dirichlet(1) (dense: every state is reachable, revisits are common), rewards are
    uniform on ``[-1, 1]`` and the initial distribution is Dirichlet(1).

    :param n_states: Number of states.
    :param n_actions: Number of actions.
    :param horizon: Episode length ``T``.
    :param seed: Seed of the draw.
    :return: The MDP.
    """
    rng = np.random.default_rng(seed)
    transitions = rng.dirichlet(np.ones(n_states), size=(n_states, n_actions))
    rewards = rng.uniform(-1.0, 1.0, size=(n_states, n_actions))
    initial = rng.dirichlet(np.ones(n_states))
    return TabularMDP(transitions, rewards, initial, horizon)


def random_logits(n_states: int, n_actions: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    """
    Draw softmax-policy parameters ``theta`` of shape ``(S, A)``, standard normal times ``scale``.

    A non-uniform policy matters: at uniform ``theta`` symmetries can hide errors in the score function.
    """
    return scale * np.random.default_rng(seed).standard_normal((n_states, n_actions))


def softmax_policy(logits: np.ndarray) -> np.ndarray:
    """``pi(a | s) = softmax(theta[s])`` as an ``(S, A)`` array."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def dynamic_programming(mdp: TabularMDP, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Exact finite-horizon quantities of the softmax policy.

    :param mdp: The MDP.
    :param logits: ``(S, A)`` policy parameters.
    :return: State distributions ``d_t(s) = P(s_t = s)`` ``(T, S)``, action values ``Q_t(s, a)`` ``(T, S, A)``
        and values ``V_t(s)`` ``(T, S)``, where ``Q_t`` and ``V_t`` are the expected rewards from step ``t``
        to the end of the episode.
    """
    policy = softmax_policy(logits)
    T, S, A = mdp.horizon, mdp.n_states, mdp.n_actions
    visits = np.empty((T, S))
    visits[0] = mdp.initial
    for t in range(T - 1):
        visits[t + 1] = np.einsum("s,sa,sap->p", visits[t], policy, mdp.transitions)
    q_values = np.empty((T, S, A))
    values = np.empty((T + 1, S))
    values[T] = 0.0  # the episode ends after T steps: nothing to bootstrap
    for t in range(T - 1, -1, -1):
        q_values[t] = mdp.rewards + mdp.transitions @ values[t + 1]
        values[t] = np.sum(policy * q_values[t], axis=1)
    return visits, q_values, values[:T]


def exact_return(mdp: TabularMDP, logits: np.ndarray) -> float:
    """The expected undiscounted return ``eta(theta) = E[sum_t r_t]``, exactly."""
    _, _, values = dynamic_programming(mdp, logits)
    return float(mdp.initial @ values[0])


def exact_gradient(mdp: TabularMDP, logits: np.ndarray) -> np.ndarray:
    """
    The policy gradient ``grad eta(theta)``, exactly, as an ``(S, A)`` array.

    ``grad eta = sum_t sum_s d_t(s) sum_a pi(a|s) grad log pi(a|s) Q_t(s, a)``, and for a tabular softmax
    ``grad_{theta[s, b]} log pi(a|s) = 1[a = b] - pi(b|s)``, so the component ``(s, b)`` collapses to
    ``sum_t d_t(s) pi(b|s) (Q_t(s, b) - V_t(s))``.
    """
    visits, q_values, values = dynamic_programming(mdp, logits)
    policy = softmax_policy(logits)
    return np.einsum("ts,sa,tsa->sa", visits, policy, q_values - values[:, :, None])


def finite_difference_gradient(mdp: TabularMDP, logits: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """Central finite differences of :func:`exact_return`, an independent check of :func:`exact_gradient`."""
    gradient = np.empty_like(logits, dtype=np.float64)
    for index in np.ndindex(logits.shape):
        shift = np.zeros_like(logits, dtype=np.float64)
        shift[index] = step
        gradient[index] = (exact_return(mdp, logits + shift) - exact_return(mdp, logits - shift)) / (2 * step)
    return gradient


def _sample_rows(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of ``(n, k)`` probabilities, by inverting the row's CDF."""
    cdf = np.cumsum(probabilities, axis=1)
    u = rng.random(len(probabilities)) * cdf[:, -1]  # scaled by the last entry: robust to rounding of the sum
    return np.minimum((u[:, None] >= cdf).sum(axis=1), probabilities.shape[1] - 1)


def sample_trajectories(mdp: TabularMDP, logits: np.ndarray, n: int, rng: np.random.Generator) -> Rollouts:
    """
    Sample ``n`` iid trajectories of the softmax policy, vectorized across trajectories.

    :param mdp: The MDP.
    :param logits: ``(S, A)`` policy parameters.
    :param n: Number of trajectories (the group size N).
    :param rng: Random generator.
    :return: ``(horizon, n)`` states, actions and rewards.
    """
    policy = softmax_policy(logits)
    T = mdp.horizon
    states = np.empty((T, n), dtype=np.int64)
    actions = np.empty((T, n), dtype=np.int64)
    states[0] = _sample_rows(np.broadcast_to(mdp.initial, (n, mdp.n_states)), rng)
    for t in range(T):
        actions[t] = _sample_rows(policy[states[t]], rng)
        if t + 1 < T:
            states[t + 1] = _sample_rows(mdp.transitions[states[t], actions[t]], rng)
    return Rollouts(states, actions, mdp.rewards[states, actions])


def score_weighted_mean(policy: np.ndarray, states: np.ndarray, actions: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """
    ``(1/N) sum_n sum_t w_t^n grad log pi(a_t^n | s_t^n)`` for a tabular softmax policy.

    The score of step ``(s, a)`` is ``onehot(a) - pi(.|s)`` on row ``s`` of ``theta`` and 0 elsewhere, so the
    sum splits into a weighted count of ``(s, a)`` pairs minus ``pi`` times a weighted count of states.

    :param policy: ``(S, A)`` action probabilities.
    :param states: ``(T, N)`` states.
    :param actions: ``(T, N)`` actions.
    :param weights: ``(T, N)`` per-step weights (the advantages).
    :return: ``(S, A)`` gradient estimate.
    """
    S, A = policy.shape
    n = states.shape[1]
    s, a, w = states.ravel(), actions.ravel(), np.asarray(weights, dtype=np.float64).ravel()
    pair_sums = np.bincount(s * A + a, weights=w, minlength=S * A).reshape(S, A)
    state_sums = np.bincount(s, weights=w, minlength=S)
    return (pair_sums - state_sums[:, None] * policy) / n


def bin_keys(rollouts: Rollouts, binning: str) -> np.ndarray:
    """Bin keys ``f(s_t, t)`` of shape ``(T, N)`` (or ``(T, N, 2)`` for ``state_time``) for a named binning."""
    T, n = rollouts.states.shape
    times = np.broadcast_to(np.arange(T)[:, None], (T, n))
    if binning == "time":
        return times
    if binning == "state":
        return rollouts.states
    if binning == "state_time":
        return np.stack((rollouts.states, times), axis=-1)
    if binning == "none":
        return np.zeros((T, n), dtype=np.int64)
    raise ValueError(f"Unknown binning {binning!r}: valid binnings are {', '.join(BINNINGS)}.")


def gpg_gradient(logits: np.ndarray, rollouts: Rollouts, estimator: str) -> np.ndarray:
    """
    The one-step (``rho = 1``) policy-gradient estimate of one group of complete trajectories.

    :param logits: ``(S, A)`` policy parameters the trajectories were sampled with.
    :param rollouts: The group: ``(T, N)`` complete, undiscounted trajectories.
    :param estimator: A binning of ``ESTIMATORS`` (GPG advantages from Algorithm 2) or ``"reinforce"``
        (advantage = return-to-go, no baseline).
    :return: ``(S, A)`` gradient estimate ``g_N``.
    """
    episode_starts = np.zeros(rollouts.rewards.shape, dtype=bool)
    episode_starts[0] = True
    binning = "none" if estimator == "reinforce" else estimator
    result = group_advantages(
        rollouts.rewards,
        episode_starts,
        bin_keys(rollouts, binning),
        gamma=1.0,
        keys_include_time=binning in ("time", "state_time"),
    )
    weights = result.returns if estimator == "reinforce" else result.advantages
    return score_weighted_mean(softmax_policy(logits), rollouts.states, rollouts.actions, weights)


def relative_errors(
    mdp: TabularMDP,
    logits: np.ndarray,
    group_sizes: Sequence[int],
    repeats: int,
    rng: np.random.Generator,
    estimators: Sequence[str] = ESTIMATORS,
) -> dict[str, np.ndarray]:
    """
    Relative L2 errors ``||g_N - grad eta|| / ||grad eta||`` over independent groups.

    All estimators see the same groups (common random numbers), so their differences are not sampling noise
    of separate draws. Group sizes are drawn in order from ``rng``: measuring them one call at a time with the
    same generator gives the same errors as one call with all of them.

    :param mdp: The MDP.
    :param logits: ``(S, A)`` policy parameters.
    :param group_sizes: Group sizes N to measure.
    :param repeats: Independent groups per group size.
    :param rng: Random generator.
    :param estimators: Names from ``ESTIMATORS``.
    :return: For each estimator, a ``(len(group_sizes), repeats)`` array of relative errors.
    """
    truth = exact_gradient(mdp, logits)
    norm = np.linalg.norm(truth)
    errors = {name: np.empty((len(group_sizes), repeats)) for name in estimators}
    for i, n in enumerate(group_sizes):
        for r in range(repeats):
            rollouts = sample_trajectories(mdp, logits, n, rng)
            for name in estimators:
                errors[name][i, r] = np.linalg.norm(gpg_gradient(logits, rollouts, name) - truth) / norm
    return errors


def loglog_slope(group_sizes: Sequence[int], mean_errors: np.ndarray) -> float:
    """Least-squares slope of ``log(error)`` against ``log(N)`` (``-1/2`` for a ``N^{-1/2}`` decay)."""
    return float(np.polyfit(np.log(np.asarray(group_sizes, dtype=np.float64)), np.log(mean_errors), 1)[0])

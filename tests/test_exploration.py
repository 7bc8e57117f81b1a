"""The count-based novelty bonus: its rewards against a plain per-transition count, and what it leaves alone."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_gpg import GPG
from sb3_gpg.arguments import ArgumentError
from sb3_gpg.exploration import VecCountBonus


def reference_bonuses(
    reached: list[np.ndarray], low: np.ndarray, high: np.ndarray, cells: int, beta: float
) -> list[np.ndarray]:
    """The bonus written out: one visit count per grid cell (a tuple of interval indices), every visit of a step
    counted before that step's bonuses are read."""
    counts: Counter[tuple[int, ...]] = Counter()
    bonuses = []
    for observations in reached:
        step_cells = []
        for observation in observations:
            cell = []
            for value, lo, hi in zip(observation, low, high, strict=True):
                fraction = min(max((value - lo) / (hi - lo), 0.0), 1.0)
                cell.append(min(int(fraction * cells), cells - 1))
            step_cells.append(tuple(cell))
            counts[tuple(cell)] += 1
        bonuses.append(np.array([beta / np.sqrt(counts[cell]) for cell in step_cells]))
    return bonuses


@pytest.mark.parametrize("cells", [1, 8, 32])
def test_bonus_matches_a_plain_count_of_the_reached_cells(cells: int) -> None:
    """MountainCar's episodes end at 200 steps within the 260 here: on those steps the reached observation is
    the terminal one, not the next episode's first."""
    n_envs, n_steps, beta = 4, 260, 0.3
    raw = make_vec_env("MountainCar-v0", n_envs=n_envs, seed=0)
    env = VecCountBonus(make_vec_env("MountainCar-v0", n_envs=n_envs, seed=0), beta=beta, cells=cells)
    raw.reset(), env.reset()
    rng = np.random.default_rng(0)
    reached, raw_rewards, rewards, ended = [], [], [], 0
    for _ in range(n_steps):
        actions = rng.integers(0, 3, size=n_envs)
        raw_observations, raw_reward, dones, infos = raw.step(actions)
        observations, reward, _, _ = env.step(actions)
        np.testing.assert_array_equal(observations, raw_observations)
        step = raw_observations.copy()
        for index in range(n_envs):
            if dones[index]:
                step[index] = infos[index]["terminal_observation"]
                ended += 1
        reached.append(step)
        raw_rewards.append(raw_reward)
        rewards.append(reward)
    assert ended == n_envs  # each sub-env's episode was truncated once
    low, high = env.observation_space.low, env.observation_space.high
    expected = reference_bonuses(reached, low.astype(np.float64), high.astype(np.float64), cells, beta)
    np.testing.assert_allclose(np.array(rewards) - np.array(raw_rewards), np.array(expected), rtol=1e-5, atol=1e-6)
    assert env.counts.sum() == n_envs * n_steps
    if cells == 1:  # one cell: the bonus of the t-th step is beta / sqrt(n_envs t)
        np.testing.assert_allclose(expected[-1], beta / np.sqrt(n_envs * n_steps))


def test_bounds_given_for_an_unbounded_space() -> None:
    """CartPole's velocities are unbounded: the grid needs bounds; observations beyond them count at the edge."""
    with pytest.raises(ArgumentError, match=r"low=\[.*inf.*\] must be finite: give `low` and `high`"):
        VecCountBonus(make_vec_env("CartPole-v1", n_envs=1))
    env = VecCountBonus(make_vec_env("CartPole-v1", n_envs=1), low=[-1, -1, -1, -1], high=[1, 1, 1, 1], cells=2)
    keys = env.cell_keys(np.array([[-5.0, -5.0, -5.0, -5.0], [-0.5, -0.5, -0.5, -0.5], [0.5, 0.5, 0.5, 0.5], [5, 5, 5, 5]]))
    assert keys[0] == keys[1] and keys[2] == keys[3] and keys[0] != keys[2]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(beta=0.0), r"beta=0.0 must be a number > 0"),
        (dict(beta=float("nan")), r"beta=nan must be a number > 0"),
        (dict(cells=0), r"cells=0 must be an integer >= 1"),
        (dict(low=[0.0]), r"low=\[0.0\] must be 2 numbers, one per observation dimension"),
        (dict(low=[0.0, 0.0], high=[1.0, 0.0]), r"high=\[1.0, 0.0\] must be above low=\[0.0, 0.0\] everywhere"),
        (dict(table_size=0), r"table_size=0 must be an integer >= 1"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        VecCountBonus(make_vec_env("MountainCar-v0", n_envs=1), **kwargs)


def test_discrete_observations_are_refused() -> None:
    with pytest.raises(ArgumentError, match=r"needs a Box observation space, not Discrete\(48\)"):
        VecCountBonus(make_vec_env("CliffWalking-v1", n_envs=1))


def test_training_and_evaluation_report_the_task_returns() -> None:
    """GPG trains on the bonus; ``Monitor`` inside still records MountainCar's own returns (-1 per step)."""
    env = VecCountBonus(make_vec_env("MountainCar-v0", n_envs=4, seed=0), beta=1.0)
    model = GPG("MlpPolicy", env, n_steps=256, batch_size=256, seed=0).learn(1024)
    assert np.all(model.rollout_buffer.rewards > -1.0)  # every training reward carries a bonus
    assert [info["r"] for info in model.ep_info_buffer] == [-200.0] * 4
    returns, lengths = evaluate_policy(model, env, n_eval_episodes=2, return_episode_rewards=True)
    assert returns == [-float(length) for length in lengths]

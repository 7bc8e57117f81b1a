"""A count-based novelty bonus, for tasks whose reward is the same on every step until a rarely reached goal.

On such a task (MountainCar-v0: -1 per step for 200 steps unless the car reaches the flag) every trajectory of a
group has the same return until one reaches the goal, so a group baseline makes every advantage zero: GPG has no
signal at all, where PPO's critic, fitting a constant with a function approximator, leaves state-dependent errors
that push its policy about. :class:`VecCountBonus` gives GPG a signal that does not need a critic: a bonus
``beta / sqrt(N(cell(s')))`` for reaching a cell of observation space that has been visited ``N`` times
(count-based exploration: Strehl and Littman's MBIE-EB bonus, as used with deep RL by Tang et al.,
arXiv 1611.04717). Returns then differ by how new the states a trajectory reached were; as the counts grow the
bonus fades and the task's own reward is left.

The cells are a grid of ``cells`` intervals per observation dimension between the observation space's bounds,
which suits low-dimensional observations (in 17 dimensions almost every state is a new cell, and the bonus is a
constant). Counts are hashed into a fixed table (collisions merge cells, harmlessly for a few million visits).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from sb3_gpg.arguments import ArgumentError, check_int, is_number


def grid_bounds(
    space: spaces.Space, low: Sequence[float] | None = None, high: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """
    The bounds of :class:`VecCountBonus`'s grid over an observation space.

    :param space: The observation space; it must be a ``Box``.
    :param low: Lower bounds, one per observation dimension; default: the space's.
    :param high: Upper bounds; default: the space's.
    :return: ``low`` and ``high`` as flat float64 arrays.
    :raises ArgumentError: if the space is not a ``Box``, or the bounds are not finite, one per dimension, and
        ``high`` above ``low``.
    """
    if not isinstance(space, spaces.Box):
        raise ArgumentError("vec_env_wrapper", f"VecCountBonus needs a Box observation space, not {space}.")
    size = int(np.prod(space.shape))
    bounds = []
    for name, value in (("low", space.low if low is None else low), ("high", space.high if high is None else high)):
        bound = np.asarray(value, dtype=np.float64).reshape(-1)
        if bound.size != size:
            raise ArgumentError(name, f"{name}={bound.tolist()} must be {size} numbers, one per observation dimension.")
        if not np.all(np.isfinite(bound)):
            raise ArgumentError(
                name, f"{name}={bound.tolist()} must be finite: give `low` and `high` for the observation space {space}."
            )
        bounds.append(bound)
    if np.any(bounds[1] <= bounds[0]):
        raise ArgumentError("high", f"high={bounds[1].tolist()} must be above low={bounds[0].tolist()} everywhere.")
    return bounds[0], bounds[1]


class VecCountBonus(VecEnvWrapper):
    """
    Adds ``beta / sqrt(N)`` to each step's reward, ``N`` the visits so far (this one included, over all sub-envs)
    to the grid cell of the step's next observation (the terminal one on the step an episode ends).

    Wrap the env before ``VecNormalize`` (the RL Zoo's ``vec_env_wrapper`` key does), so that cells are over raw
    observations; ``Monitor`` (inside) still records the task's own returns, which SB3's ``evaluate_policy`` and
    the Zoo's logs report. The counts live in the wrapper: a saved model does not keep them.

    :param venv: The vectorized env; its observation space must be a ``Box``.
    :param beta: The bonus of a first visit (> 0), in the task's reward units.
    :param cells: Grid intervals per observation dimension (>= 1).
    :param low: Lower bounds of the grid, one per observation dimension; default: the observation space's.
    :param high: Upper bounds of the grid; default: the observation space's. Observations outside the bounds count
        in the outermost cells. The bounds must be finite: give them where the observation space has none.
    :param table_size: Number of hashed counters (>= 1).
    """

    def __init__(
        self,
        venv: VecEnv,
        beta: float = 0.1,
        cells: int = 64,
        low: Sequence[float] | None = None,
        high: Sequence[float] | None = None,
        table_size: int = 2**20,
    ):
        super().__init__(venv)
        if not is_number(beta) or beta <= 0:
            raise ArgumentError("beta", f"beta={beta!r} must be a number > 0.")
        self.beta = float(beta)
        self.cells = check_int("cells", cells)
        self.low, self.high = grid_bounds(venv.observation_space, low, high)
        self.counts = np.zeros(check_int("table_size", table_size), dtype=np.int64)
        # Fixed odd multipliers: the same cell hashes to the same counter in every run.
        self._multipliers = np.random.default_rng(0).integers(1, 2**31, size=self.low.size) * 2 + 1

    def cell_keys(self, observations: np.ndarray) -> np.ndarray:
        """The counter index of each observation's cell (one per row of ``observations``)."""
        flat = observations.reshape(len(observations), -1).astype(np.float64)
        scaled = np.clip((flat - self.low) / (self.high - self.low), 0.0, 1.0)
        cell = np.minimum((scaled * self.cells).astype(np.int64), self.cells - 1)
        return (cell * self._multipliers).sum(axis=1) % self.counts.size

    def reset(self) -> VecEnvObs:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        observations, rewards, dones, infos = self.venv.step_wait()
        reached = np.array(observations, copy=True)
        for index in np.flatnonzero(dones):  # the observation reached is the terminal one, not the reset's
            reached[index] = infos[index]["terminal_observation"]
        keys = self.cell_keys(reached)
        np.add.at(self.counts, keys, 1)
        bonus = self.beta / np.sqrt(self.counts[keys])
        return observations, (rewards + bonus).astype(np.float32), dones, infos

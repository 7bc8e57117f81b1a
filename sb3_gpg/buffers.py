"""Rollout buffers that hold a group and compute GPG's group-baseline advantages."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.vec_env import VecNormalize

from sb3_gpg.binning import TIME_BINNING, Binning
from sb3_gpg.estimator import ALGORITHM_2, BinHistory, EstimatorConfig, GroupStats, group_advantages

TensorObs = th.Tensor | dict[str, th.Tensor]


class GroupRolloutBufferSamples(NamedTuple):
    observations: TensorObs
    actions: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor


class MaskableGroupRolloutBufferSamples(NamedTuple):
    observations: TensorObs
    actions: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor
    action_masks: th.Tensor


class GroupRolloutBuffer(RolloutBuffer):
    """
    Rollout buffer for GPG: it stores a group of trajectories with each step's episode time, and computes
    advantages with the binned group baseline of Algorithm 2 instead of GAE. There are no values.

    The buffer grows past ``buffer_size`` rows when a rollout needs more (complete-episode collection),
    and only the steps marked ``valid`` enter the group and the minibatches.

    :param buffer_size: Number of steps per env of a rollout (``n_steps``); the initial capacity.
    :param observation_space: Observation space
    :param action_space: Action space
    :param device: PyTorch device of the sampled minibatches
    :param gamma: Discount factor of the returns
    :param n_envs: Number of parallel environments
    :param binning: The binning ``f(s, t)`` (:func:`~sb3_gpg.binning.make_binning`); default: time bins.
    :param estimator: The estimator variants (:class:`~sb3_gpg.estimator.EstimatorConfig`); default: Algorithm 2.
    :param shared_starts: ``K`` of GPG's ``shared_starts``: the envs form blocks of ``K`` that share their starts in
        each round, and the bin key gets a last column naming the block and round, so that each step is compared
        with its siblings only. 1: no such column.
    """

    #: The per-step arrays besides the observations that a rollout fills (subclasses add theirs).
    step_arrays: tuple[str, ...] = ("actions", "rewards", "episode_starts", "episode_times", "start_rounds", "log_probs")

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        gamma: float = 0.99,
        n_envs: int = 1,
        binning: Binning = TIME_BINNING,
        estimator: EstimatorConfig = ALGORITHM_2,
        shared_starts: int = 1,
    ):
        self.binning = binning
        self.estimator = estimator
        self.shared_starts = shared_starts
        self.group_stats: GroupStats | None = None
        #: The decayed samples of the earlier rollouts' bins (``history_weight``), carried from rollout to rollout.
        self.history: BinHistory | None = None
        # The unfinished trajectories held back for the next rollout (collection="carry"): per env, its steps.
        self._carried: list[dict[str, np.ndarray | dict[str, np.ndarray]]] | None = None
        super().__init__(buffer_size, observation_space, action_space, device, gae_lambda=1.0, gamma=gamma, n_envs=n_envs)

    # --- observation storage (the Dict variant overrides these four) ---
    def _empty_observations(self, rows: int) -> np.ndarray:
        return np.zeros((rows, self.n_envs, *self.obs_shape), dtype=self.observation_space.dtype)

    def _store_observations(self, obs: np.ndarray) -> None:
        # Discrete observations come as (n_envs,) and must be stored as (n_envs, 1), as in SB3.
        self.observations[self.pos] = np.asarray(obs).reshape((self.n_envs, *self.obs_shape))

    def _map_observations(self, fn: Callable[[np.ndarray], np.ndarray]):
        return fn(self.observations)

    def _put_observations(self, steps: slice, env: int, values: np.ndarray) -> None:
        self.observations[steps, env] = values

    def reset(self) -> None:
        self._allocate(self.buffer_size)
        self.generator_ready = False
        self._tensors: dict | None = None
        self.group_stats = None
        self.pos = 0
        self.full = False
        if self._carried is not None:
            self._restore_carried()

    def _allocate(self, rows: int) -> None:
        """Empty arrays for a rollout of ``rows`` rows (a subclass adds its own per-step arrays)."""
        self.observations = self._empty_observations(rows)
        self.actions = np.zeros((rows, self.n_envs, self.action_dim), dtype=self.action_space.dtype)
        self.rewards = np.zeros((rows, self.n_envs), dtype=np.float32)
        self.episode_starts = np.zeros((rows, self.n_envs), dtype=bool)
        self.episode_times = np.zeros((rows, self.n_envs), dtype=np.int64)
        self.start_rounds = np.zeros((rows, self.n_envs), dtype=np.int64)
        self.valid = np.ones((rows, self.n_envs), dtype=bool)
        self.log_probs = np.zeros((rows, self.n_envs), dtype=np.float32)
        self.returns = np.zeros((rows, self.n_envs), dtype=np.float32)
        self.advantages = np.zeros((rows, self.n_envs), dtype=np.float32)

    def _grow(self) -> None:
        """Double the capacity, keeping what is stored (complete-episode rollouts of unknown length)."""
        extra = self.buffer_size

        def grow(array: np.ndarray) -> np.ndarray:
            return np.concatenate((array, np.zeros((extra, *array.shape[1:]), dtype=array.dtype)))

        self.observations = self._map_observations(lambda obs: grow(obs))
        for name in (*self.step_arrays, "returns", "advantages"):
            setattr(self, name, grow(getattr(self, name)))
        self.valid = np.concatenate((self.valid, np.ones((extra, self.n_envs), dtype=bool)))
        self.buffer_size += extra

    def add(  # type: ignore[override]
        self,
        obs: np.ndarray | dict[str, np.ndarray],
        action: np.ndarray,
        reward: np.ndarray,
        episode_start: np.ndarray,
        log_prob: th.Tensor,
        episode_time: np.ndarray,
        valid: np.ndarray | None = None,
        start_round: int = 0,
    ) -> None:
        """
        :param obs: Observation
        :param action: Action
        :param reward: Reward
        :param episode_start: Whether the observation is the first of an episode
        :param log_prob: Log probability of the action under the rollout policy
        :param episode_time: Steps since each env's episode reset (0 on the first step)
        :param valid: Which envs' steps belong to the group (default: all)
        :param start_round: The round of shared starts the step belongs to (``shared_starts > 1``)
        """
        if self.pos == self.buffer_size:
            self._grow()
        self._store_observations(obs)
        self.actions[self.pos] = np.asarray(action).reshape((self.n_envs, self.action_dim))
        self.rewards[self.pos] = reward
        self.episode_starts[self.pos] = episode_start
        self.episode_times[self.pos] = episode_time
        self.start_rounds[self.pos] = start_round
        if valid is not None:
            self.valid[self.pos] = valid
        self.log_probs[self.pos] = log_prob.detach().cpu().numpy().reshape(self.n_envs)
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full = True

    def carry_unfinished(self, ended: np.ndarray, max_length: int | None = None) -> None:
        """
        Hold back each env's last trajectory if its episode has not ended: it leaves this rollout's group (its steps
        become invalid here) and comes back at the top of the next rollout (:meth:`reset`), where the rest of the
        episode completes its returns (``collection="carry"``). Only complete trajectories then enter a group, and no
        env waits for another.

        :param ended: ``(n_envs,)``, true where the rollout's last step ended the env's episode (nothing to carry).
        :param max_length: An unfinished trajectory longer than this is not carried but left in the group with its
            truncated return, as the window does (an episode that never ends must not grow the buffer forever).
        """
        rows = self.pos
        # The last trajectory of each env starts at its last episode start (row 0 if none: a carried or older one).
        starts = self.episode_starts[:rows].copy()
        starts[0] = True
        last_start = rows - 1 - np.argmax(starts[::-1], axis=0)
        carried = []
        for env in range(self.n_envs):
            first = int(last_start[env])
            first += int(np.argmax(self.valid[first:rows, env]))  # not the padding above a carried trajectory
            if ended[env] or (max_length is not None and rows - first > max_length):
                carried.append({})
                continue
            steps = slice(first, rows)
            record: dict[str, np.ndarray | dict[str, np.ndarray]] = {
                name: getattr(self, name)[steps, env].copy() for name in self.step_arrays
            }
            record["observations"] = self._map_observations(lambda obs, steps=steps, env=env: obs[steps, env].copy())
            record["valid"] = self.valid[steps, env].copy()
            self.valid[steps, env] = False
            carried.append(record)
        self._carried = carried

    def drop_carried(self) -> None:
        """Forget the trajectories held back for the next rollout (the envs were reset: they will not continue)."""
        self._carried = None

    def _restore_carried(self) -> None:
        """Put the held-back trajectories at the top of the new rollout, right-aligned so that every env's new steps
        start on the same row; the rows above a shorter one are padding outside the group."""
        assert self._carried is not None
        carried, self._carried = self._carried, None
        lengths = [len(record["rewards"]) if record else 0 for record in carried]  # type: ignore[arg-type]
        top = max(lengths, default=0)
        if top == 0:
            return
        while self.buffer_size < top + 1:
            self._grow()
        self.valid[:top] = False
        self.episode_starts[0] = True  # the padding is a trajectory of its own, outside the group
        for env, (record, length) in enumerate(zip(carried, lengths, strict=True)):
            if not length:
                continue
            steps = slice(top - length, top)
            for name in self.step_arrays:
                getattr(self, name)[steps, env] = record[name]
            self._put_observations(steps, env, record["observations"])  # type: ignore[arg-type]
            self.valid[steps, env] = record["valid"]
        self.pos = top

    def compute_returns_and_advantage(self) -> GroupStats:  # type: ignore[override]
        """
        Compute Monte Carlo returns and the binned group-baseline advantages of the stored rollout.

        Unlike PPO's version this takes no last values: with no critic there is no bootstrap, and the
        returns of trajectories cut by the end of the rollout are truncated (see the collection modes of
        :class:`~sb3_gpg.GPG`).

        :return: The group's statistics.
        """
        rows = self.pos
        n = rows * self.n_envs
        observations = self._map_observations(lambda obs: obs[:rows].reshape(n, *obs.shape[2:]))
        episode_times = self.episode_times[:rows].reshape(n)

        start_groups = None
        if self.shared_starts > 1:
            # Block b of round r: steps are compared with the K - 1 siblings that started where they did.
            n_blocks = self.n_envs // self.shared_starts
            blocks = np.arange(self.n_envs) // self.shared_starts
            start_groups = (self.start_rounds[:rows] * n_blocks + blocks)[..., None]

        def keys(binning: Binning) -> np.ndarray:
            level = binning(observations, episode_times, self.n_envs).reshape(rows, self.n_envs, -1)
            return level if start_groups is None else np.concatenate((level, start_groups), axis=-1)

        valid = self.valid[:rows]
        whole_group = bool(valid.all())
        episode_starts = self.episode_starts[:rows]
        if not whole_group:
            # A step that enters the group after steps outside it starts a trajectory of the group (the padding above
            # a carried trajectory, collection="carry"); everywhere else trajectories start at episode starts.
            episode_starts = episode_starts.copy()
            episode_starts[1:] |= valid[1:] & ~valid[:-1]
        estimate = group_advantages(
            self.rewards[:rows],
            episode_starts,
            keys(self.binning),
            self.gamma,
            keys_include_time=self.binning.keys_include_time,
            valid=None if whole_group else valid,
            config=self.estimator,
            # The coarser levels' keys are computed only when a fallback will read them.
            coarse_keys=[(keys(level), level.keys_include_time) for level in self.binning.coarser]
            if self.estimator.uses_fallback
            else (),
            history=self.history,
        )
        self.history = estimate.history
        self.returns[:rows] = estimate.returns
        self.advantages[:rows] = estimate.advantages
        self.group_stats = estimate.stats
        self.full = True
        return estimate.stats

    def _flatten(self, array: np.ndarray, dtype=None) -> th.Tensor:
        """The group's steps of a ``(rows, n_envs, ...)`` array as one tensor."""
        rows = self.pos
        keep = self.valid[:rows].T.reshape(-1)
        # Env-major order as SB3's swap_and_flatten, without its trailing axis for per-step scalars.
        array = array[:rows].swapaxes(0, 1).reshape(-1, *array.shape[2:])[keep]
        return self.to_torch(array if dtype is None else array.astype(dtype, copy=False), copy=False)

    def _flat_tensors(self) -> dict:
        """The group's steps, flattened and converted to tensors once per rollout (not per minibatch)."""
        return dict(
            observations=self._map_observations(self._flatten),
            # Cast to float32 as SB3 does (the policy converts discrete actions back to long).
            actions=self._flatten(self.actions, np.float32),
            old_log_prob=self._flatten(self.log_probs),
            advantages=self._flatten(self.advantages),
        )

    def get(self, batch_size: int | None = None) -> Generator[GroupRolloutBufferSamples, None, None]:  # type: ignore[override]
        assert self.full, "compute_returns_and_advantage() must run before sampling"
        if not self.generator_ready:
            self._tensors = self._flat_tensors()
            self.generator_ready = True
        tensors = self._tensors
        assert tensors is not None
        n_samples = len(tensors["advantages"])
        # np.random (seeded by SB3's set_random_seed) keeps runs reproducible like SB3's own buffers.
        indices = th.as_tensor(np.random.permutation(n_samples), device=self.device)
        batch_size = n_samples if batch_size is None else batch_size
        for start in range(0, n_samples, batch_size):
            yield self._get_samples(indices[start : start + batch_size])

    def _get_samples(self, batch_inds: th.Tensor, env: VecNormalize | None = None) -> GroupRolloutBufferSamples:  # type: ignore[override]
        tensors = self._tensors
        assert tensors is not None
        observations = tensors["observations"]
        if isinstance(observations, dict):
            observations = {key: obs[batch_inds] for key, obs in observations.items()}
        else:
            observations = observations[batch_inds]
        return GroupRolloutBufferSamples(
            observations,
            tensors["actions"][batch_inds],
            tensors["old_log_prob"][batch_inds],
            tensors["advantages"][batch_inds],
        )


class GroupDictRolloutBuffer(GroupRolloutBuffer):
    """
    :class:`GroupRolloutBuffer` for ``Dict`` observation spaces (``MultiInputPolicy``).

    Binning functions receive the observations as a dict of arrays.
    """

    observation_space: spaces.Dict
    obs_shape: dict[str, tuple[int, ...]]  # type: ignore[assignment]
    observations: dict[str, np.ndarray]  # type: ignore[assignment]

    def _empty_observations(self, rows: int) -> dict[str, np.ndarray]:  # type: ignore[override]
        return {
            key: np.zeros((rows, self.n_envs, *shape), dtype=self.observation_space[key].dtype)
            for key, shape in self.obs_shape.items()
        }

    def _store_observations(self, obs: dict[str, np.ndarray]) -> None:  # type: ignore[override]
        for key, shape in self.obs_shape.items():
            self.observations[key][self.pos] = np.asarray(obs[key]).reshape((self.n_envs, *shape))

    def _map_observations(self, fn: Callable[[np.ndarray], np.ndarray]):
        return {key: fn(obs) for key, obs in self.observations.items()}

    def _put_observations(self, steps: slice, env: int, values: dict[str, np.ndarray]) -> None:  # type: ignore[override]
        for key, obs in self.observations.items():
            obs[steps, env] = values[key]


class MaskableGroupRolloutBuffer(GroupRolloutBuffer):
    """
    :class:`GroupRolloutBuffer` that also stores the invalid-action masks of each step (sb3-contrib's
    ``MaskableRolloutBuffer`` layout: one float per action choice, 1 = valid), for
    :class:`~sb3_gpg.MaskableGPG`. Arguments as :class:`GroupRolloutBuffer`.
    """

    action_masks: np.ndarray
    step_arrays = (*GroupRolloutBuffer.step_arrays, "action_masks")

    def reset(self) -> None:
        if isinstance(self.action_space, spaces.Discrete):
            self.mask_dims = int(self.action_space.n)
        elif isinstance(self.action_space, spaces.MultiDiscrete):
            self.mask_dims = int(sum(self.action_space.nvec))
        elif isinstance(self.action_space, spaces.MultiBinary) and isinstance(self.action_space.n, int):
            self.mask_dims = 2 * self.action_space.n  # one mask per binary outcome
        else:
            raise ValueError(
                f"Action masking does not support the action space {self.action_space}: valid spaces are Discrete, "
                "MultiDiscrete and one-dimensional MultiBinary."
            )
        super().reset()

    def _allocate(self, rows: int) -> None:
        super()._allocate(rows)
        self.action_masks = np.ones((rows, self.n_envs, self.mask_dims), dtype=np.float32)

    def _grow(self) -> None:
        extra = self.buffer_size
        super()._grow()
        self.action_masks[-extra:] = 1.0  # new rows: every action valid until a step says otherwise

    def add(self, *args, action_masks: np.ndarray | None = None, **kwargs) -> None:  # type: ignore[override]
        """
        Arguments as :meth:`GroupRolloutBuffer.add`, and:

        :param action_masks: ``(n_envs, mask_dims)`` masks the actions were sampled under (default: all valid)
        """
        if self.pos == self.buffer_size:
            self._grow()
        if action_masks is not None:
            self.action_masks[self.pos] = np.asarray(action_masks).reshape((self.n_envs, self.mask_dims))
        super().add(*args, **kwargs)

    def _flat_tensors(self) -> dict:
        return dict(super()._flat_tensors(), action_masks=self._flatten(self.action_masks))

    def _get_samples(self, batch_inds: th.Tensor, env: VecNormalize | None = None) -> MaskableGroupRolloutBufferSamples:  # type: ignore[override]
        samples = super()._get_samples(batch_inds, env)
        assert self._tensors is not None
        return MaskableGroupRolloutBufferSamples(*samples, action_masks=self._tensors["action_masks"][batch_inds])


class MaskableGroupDictRolloutBuffer(MaskableGroupRolloutBuffer, GroupDictRolloutBuffer):
    """:class:`MaskableGroupRolloutBuffer` for ``Dict`` observation spaces. Arguments as :class:`GroupRolloutBuffer`."""

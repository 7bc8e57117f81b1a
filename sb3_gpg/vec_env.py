"""Batched environment backends (gymnasium vector envs, envpool) behind SB3's ``VecEnv`` interface.

SB3's own ``DummyVecEnv``/``SubprocVecEnv`` step one Python env object per sub-env. A batched backend steps all
sub-envs in one call (a numpy-vectorized ``vector_entry_point`` such as gymnasium's ``CartPoleVectorEnv``, or
envpool's C++ thread pool), which is what makes large ``n_envs`` cheap. The adapter here gives such a backend
exactly the semantics that SB3 algorithms rely on, those of ``DummyVecEnv`` over ``Monitor``-wrapped envs
(as built by :func:`stable_baselines3.common.env_util.make_vec_env`):

- same-step reset: on the step an episode ends, ``done`` is true, the returned observation is already the
  first one of the next episode and ``infos[i]["terminal_observation"]`` holds the last one of the ended episode;
- ``infos[i]["TimeLimit.truncated"] = truncated and not terminated``;
- ``infos[i]["episode"] = {"r", "l", "t"}`` on the step an episode ends, computed as ``Monitor`` does;
- ``seed(s)`` followed by ``reset()`` seeds sub-env ``i`` with ``s + i``;
- rewards are a float32 array, dones a bool array, observations batched in the observation space's dtype.

One deliberate difference: the backend's own per-step info entries (``x_position``, ``is_success``, ...) are
forwarded only on the step where the sub-env's episode ends, which is where SB3 reads them; unbatching them on
every step would put a Python loop over all sub-envs in the hot path.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
from gymnasium.envs.registration import VectorizeMode
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from sb3_gpg.arguments import ArgumentError

VEC_ENV_BACKENDS = ("dummy", "subproc", "gymnasium", "envpool")


def check_backend(backend: str) -> str:
    """
    :param backend: A ``backend`` of :func:`make_vec_env` (the Zoo's ``--vec-env``).
    :return: ``backend``, if it is one of :data:`VEC_ENV_BACKENDS`.
    :raises ArgumentError: naming the valid backends.
    """
    if backend not in VEC_ENV_BACKENDS:
        raise ArgumentError("backend", f"Unknown backend={backend!r}: valid backends are {', '.join(VEC_ENV_BACKENDS)}.")
    return backend


# Keys that gymnasium's SAME_STEP autoreset adds to the step info; everything else at an ended sub-env's index
# is the info of the reset that started its next episode.
_SAME_STEP_KEYS = ("final_obs", "_final_obs", "final_info", "_final_info")


def _unbatch_info(batched: dict[str, Any], index: int) -> dict[str, Any]:
    """
    One sub-env's info out of a gymnasium-style batched info dict.

    Gymnasium stores each key as an array over sub-envs with a boolean mask under ``"_" + key`` telling which
    sub-envs reported it; nested dicts are batched the same way. envpool gives the arrays without masks.

    :param batched: The batched info dict.
    :param index: Position of the sub-env in the batch.
    :return: The sub-env's info dict.
    """
    info = {}
    for key, value in batched.items():
        if key.startswith("_") and key[1:] in batched:
            continue
        mask = batched.get(f"_{key}")
        if mask is not None and not mask[index]:
            continue
        info[key] = _unbatch_info(value, index) if isinstance(value, dict) else value[index]
    return info


def _take(obs: Any, index: int | np.ndarray) -> Any:
    """
    Index a batched observation (array, or dict/tuple of arrays for ``Dict``/``Tuple`` spaces).

    :param obs: The batched observation.
    :param index: A sub-env position or an array of positions.
    :return: A copy, so it survives a backend that reuses its output buffers.
    """
    if isinstance(obs, dict):
        return {key: _take(value, index) for key, value in obs.items()}
    if isinstance(obs, tuple):
        return tuple(_take(value, index) for value in obs)
    return obs[index].copy()


def _copy(obs: Any) -> Any:
    """
    Copy a batched observation before writing into it.

    :param obs: The batched observation.
    :return: The copy.
    """
    if isinstance(obs, dict):
        return {key: _copy(value) for key, value in obs.items()}
    if isinstance(obs, tuple):
        return tuple(_copy(value) for value in obs)
    return np.array(obs)


def _put(obs: Any, index: np.ndarray, values: Any) -> None:
    """
    Write the rows ``values`` of a batched observation into ``obs`` at positions ``index``, in place.

    :param obs: The batched observation to write into.
    :param index: Positions to write.
    :param values: Batched observation with ``len(index)`` rows.
    """
    if isinstance(obs, dict):
        for key in obs:
            _put(obs[key], index, values[key])
    elif isinstance(obs, tuple):
        for part, part_values in zip(obs, values, strict=True):
            _put(part, index, part_values)
    else:
        obs[index] = values


def _reset_cartpole_vector_env(env: CartPoleVectorEnv, mask: np.ndarray) -> np.ndarray:
    """
    Reset only the masked sub-envs of gymnasium's numpy ``CartPoleVectorEnv``.

    Its ``reset()`` ignores ``options["reset_mask"]`` and would re-draw every sub-env. This makes the one draw
    its own next-step autoreset would make at the start of the next step, from the same generator, so the
    random stream is the one of an unmodified ``CartPoleVectorEnv``; only the step that autoreset would waste
    on ignoring the action is gone.

    :param env: The bare (unwrapped) vector env.
    :param mask: ``(num_envs,)`` bool, the sub-envs to reset.
    :return: The batched observation, with the reset sub-envs at their new initial state.
    """
    env.state[:, mask] = env.np_random.uniform(low=env.low, high=env.high, size=(4, int(mask.sum())))
    env.steps[mask] = 0
    env.prev_done[mask] = False
    return env.state.T.astype(np.float32)


class GymnasiumVecEnv(VecEnv):
    """
    SB3 ``VecEnv`` over a batched gymnasium ``VectorEnv``, with the semantics of SB3's ``DummyVecEnv`` over
    ``Monitor``-wrapped envs (see the module docstring).

    A backend built with ``autoreset_mode=AutoresetMode.SAME_STEP`` is used as is. One that autoresets in
    NEXT_STEP mode (gymnasium's default, and what native ``vector_entry_point`` implementations do) or not at all
    (DISABLED) is reset immediately, for the sub-envs whose episode just ended, with a partial reset: SB3 needs
    the next episode's first observation on the step the previous episode ends, to choose the next action.

    Seeding: ``seed(s)`` then ``reset()`` gives sub-env ``i`` the seed ``s + i`` on ``SyncVectorEnv`` and
    ``AsyncVectorEnv``, as ``DummyVecEnv`` does. Native vector implementations keep one random generator for all
    sub-envs; it is seeded with ``s``, so runs are reproducible but do not match ``DummyVecEnv``'s.

    :param venv: The gymnasium vector env. ``SyncVectorEnv``/``AsyncVectorEnv`` (possibly under vector
        wrappers) in any autoreset mode, or a ``SAME_STEP`` backend, or gymnasium's bare ``CartPoleVectorEnv``.
    """

    def __init__(self, venv: gym.vector.VectorEnv):
        # Set before VecEnv.__init__, which reads render_mode through get_attr.
        self.venv = venv
        autoreset_mode = AutoresetMode(venv.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP))
        self._same_step = autoreset_mode == AutoresetMode.SAME_STEP
        if not self._same_step and not self._supports_partial_reset():
            raise ValueError(
                f"{type(venv.unwrapped).__name__} autoresets in {autoreset_mode.value} mode and has no partial reset "
                "known to work (options['reset_mask']), so the first observation of a new episode cannot be had on "
                "the step the previous one ends, as SB3 needs. Build it with "
                "autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP, or use vectorization_mode='sync'."
            )
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None
        self._episode_returns = np.zeros(self.num_envs, dtype=np.float64)
        self._episode_lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._t_start = time.time()

    # --- Backend hooks (EnvPoolVecEnv overrides these) ---

    def _supports_partial_reset(self) -> bool:
        """
        :return: Whether :meth:`_partial_reset` works on this backend.
        """
        backend = self.venv.unwrapped
        bare_cartpole = isinstance(self.venv, CartPoleVectorEnv)
        return bare_cartpole or isinstance(backend, (SyncVectorEnv, AsyncVectorEnv))

    def _backend_reset(self) -> tuple[VecEnvObs, dict[str, Any]]:
        """
        Reset every sub-env, with the seeds and options set for this reset.

        :return: Batched observation and batched info.
        """
        seed: int | list[int | None] | None = None
        if any(env_seed is not None for env_seed in self._seeds):
            if isinstance(self.venv.unwrapped, (SyncVectorEnv, AsyncVectorEnv)):
                seed = list(self._seeds)
            else:
                # Batched implementations keep one generator for all sub-envs: seed it with the base seed.
                seed = self._seeds[0]
        return self.venv.reset(seed=seed, options=self._common_options())

    def _partial_reset(self, ended: np.ndarray, mask: np.ndarray) -> tuple[VecEnvObs, list[dict[str, Any]]]:
        """
        Reset only the given sub-envs.

        :param ended: Positions of the sub-envs to reset, ascending.
        :param mask: ``(num_envs,)`` bool, the same sub-envs as a mask.
        :return: The batched first observations of the reset sub-envs (``len(ended)`` rows) and their reset infos.
        """
        if isinstance(self.venv, CartPoleVectorEnv):
            return _take(_reset_cartpole_vector_env(self.venv, mask), ended), [{} for _ in ended]
        obs, info = self.venv.reset(options={"reset_mask": mask})
        return _take(obs, ended), [_unbatch_info(info, index) for index in ended]

    def _backend_step_async(self, actions: np.ndarray) -> None:
        """
        Send the actions to the backend.

        :param actions: Batched actions.
        """
        if isinstance(self.venv, AsyncVectorEnv):
            self.venv.step_async(actions)
        else:
            self._actions = actions

    def _backend_step_wait(self) -> tuple[VecEnvObs, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """
        :return: The backend's step result, ``(obs, rewards, terminated, truncated, info)``.
        """
        if isinstance(self.venv, AsyncVectorEnv):
            return self.venv.step_wait()
        return self.venv.step(self._actions)

    def _render_frames(self) -> Sequence[np.ndarray | None] | None:
        """
        :return: One rendered frame per sub-env, or whatever the backend's ``render()`` gives.
        """
        return self.venv.render()

    # --- SB3 VecEnv API ---

    def reset(self) -> VecEnvObs:
        """
        Reset every sub-env, with the seeds set by :meth:`seed` and options set by ``set_options`` (both used once).

        :return: The batched first observations.
        """
        obs, info = self._backend_reset()
        self._reset_seeds()
        self._reset_options()
        self._episode_returns[:] = 0.0
        self._episode_lengths[:] = 0
        self.reset_infos = [_unbatch_info(info, index) for index in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """
        Start stepping every sub-env.

        :param actions: Batched actions, one row per sub-env.
        """
        self._backend_step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        """
        Finish the step started by :meth:`step_async`.

        :return: Observations (the next episode's first one where an episode ended), float32 rewards, bool dones
            and one info dict per sub-env.
        """
        obs, rewards, terminated, truncated, info = self._backend_step_wait()
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        dones = terminated | truncated
        self._episode_returns += rewards
        self._episode_lengths += 1
        infos: list[dict[str, Any]] = [{"TimeLimit.truncated": False} for _ in range(self.num_envs)]
        ended = np.flatnonzero(dones)
        if ended.size > 0:
            obs = self._end_episodes(obs, info, dones, ended, truncated & ~terminated, infos)
        return obs, np.array(rewards, dtype=np.float32), dones, infos

    def _end_episodes(
        self,
        obs: VecEnvObs,
        info: dict[str, Any],
        dones: np.ndarray,
        ended: np.ndarray,
        timeouts: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> VecEnvObs:
        """
        Same-step reset and the infos of the sub-envs whose episode ended on this step.

        :param obs: The backend's batched observation.
        :param info: The backend's batched info.
        :param dones: ``(num_envs,)`` bool, terminated or truncated.
        :param ended: Positions where ``dones`` is set.
        :param timeouts: ``(num_envs,)`` bool, truncated and not terminated.
        :param infos: The per-sub-env infos to fill in, in place.
        :return: The batched observation with the next episodes' first observations.
        """
        if self._same_step:
            terminal_obs = [info["final_obs"][index] for index in ended]
            final_infos = [_unbatch_info(info.get("final_info", {}), index) for index in ended]
            reset_infos = [
                _unbatch_info({key: value for key, value in info.items() if key not in _SAME_STEP_KEYS}, index)
                for index in ended
            ]
        else:
            terminal_obs = [_take(obs, index) for index in ended]
            final_infos = [_unbatch_info(info, index) for index in ended]
            reset_obs, reset_infos = self._partial_reset(ended, dones)
            obs = _copy(obs)
            _put(obs, ended, reset_obs)
        elapsed = round(time.time() - self._t_start, 6)
        for index, final_obs, final_info, reset_info in zip(ended, terminal_obs, final_infos, reset_infos, strict=True):
            # Same figures as Monitor: the return is a float64 sum rounded to 6 decimals.
            episode = {
                "r": round(float(self._episode_returns[index]), 6),
                "l": int(self._episode_lengths[index]),
                "t": elapsed,
            }
            infos[index] = {
                **final_info,
                "episode": episode,
                "TimeLimit.truncated": bool(timeouts[index]),
                "terminal_observation": final_obs,
            }
            self.reset_infos[index] = reset_info
        self._episode_returns[ended] = 0.0
        self._episode_lengths[ended] = 0
        return obs

    def close(self) -> None:
        """Close the backend."""
        self.venv.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        """
        :return: One RGB frame per sub-env (the backend must have been made with ``render_mode="rgb_array"``).
        """
        if self.render_mode != "rgb_array":
            warnings.warn(
                f"The render mode is {self.render_mode}, but this method assumes it is `rgb_array` to obtain images."
            )
            return [None for _ in range(self.num_envs)]
        frames = self._render_frames()
        if frames is None or len(frames) != self.num_envs:
            raise NotImplementedError(
                f"{type(self.venv.unwrapped).__name__}.render() does not return one frame per sub-env "
                f"(got {None if frames is None else len(frames)} for {self.num_envs} sub-envs), so the sub-envs cannot be "
                "rendered one by one."
            )
        return list(frames)

    def _sub_envs(self) -> list[gym.Env] | None:
        """
        :return: The sub-env objects where the backend holds them in this process, else None.
        """
        backend = self.venv.unwrapped
        return backend.envs if isinstance(backend, SyncVectorEnv) else None

    def _require_all(self, indices: VecEnvIndices, what: str) -> None:
        """
        Raise unless ``indices`` selects every sub-env; for backends that can only address all of them at once.

        :param indices: The indices asked for.
        :param what: What was being done, for the message.
        """
        if sorted(self._get_indices(indices)) != list(range(self.num_envs)):
            raise NotImplementedError(
                f"{type(self.venv.unwrapped).__name__} cannot {what} for some sub-envs only (indices={indices!r}); "
                "pass indices=None."
            )

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """
        Return an attribute of each sub-env.

        Backends without sub-env objects (native vector envs, envpool) answer with the attribute of the batched
        env, the same for every sub-env (``render_mode``, ``spec``, ...).

        :param attr_name: Name of the attribute.
        :param indices: Indices of the sub-envs, all when None.
        :return: One value per selected sub-env.
        """
        indices = list(self._get_indices(indices))
        sub_envs = self._sub_envs()
        if sub_envs is not None:
            return [sub_envs[index].get_wrapper_attr(attr_name) for index in indices]
        backend = self.venv.unwrapped
        if isinstance(backend, AsyncVectorEnv):
            values = backend.get_attr(attr_name)
            return [values[index] for index in indices]
        value = getattr(self.venv, attr_name)
        return [value for _ in indices]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """
        Set an attribute of each selected sub-env (of the batched env where there are no sub-env objects).

        :param attr_name: Name of the attribute.
        :param value: The value.
        :param indices: Indices of the sub-envs, all when None.
        """
        sub_envs = self._sub_envs()
        if sub_envs is not None:
            for index in self._get_indices(indices):
                setattr(sub_envs[index], attr_name, value)
            return
        self._require_all(indices, f"set {attr_name!r}")
        backend = self.venv.unwrapped
        if isinstance(backend, AsyncVectorEnv):
            backend.set_attr(attr_name, value)
        else:
            setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        """
        Call a method of each selected sub-env.

        :param method_name: Name of the method.
        :param method_args: Positional arguments.
        :param indices: Indices of the sub-envs, all when None.
        :param method_kwargs: Keyword arguments.
        :return: One result per selected sub-env.
        """
        sub_envs = self._sub_envs()
        if sub_envs is not None:
            return [
                sub_envs[index].get_wrapper_attr(method_name)(*method_args, **method_kwargs)
                for index in self._get_indices(indices)
            ]
        backend = self.venv.unwrapped
        if not isinstance(backend, AsyncVectorEnv):
            raise NotImplementedError(
                f"{type(backend).__name__} has no sub-env objects to call {method_name!r} on; "
                "use vectorization_mode='sync' or 'async' for env_method."
            )
        self._require_all(indices, f"call {method_name!r}")
        return list(backend.call(method_name, *method_args, **method_kwargs))

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """
        Check whether the sub-envs are wrapped with ``wrapper_class``.

        Asking for ``Monitor`` gets yes: the episode statistics are produced here exactly as ``Monitor`` produces
        them, and that is what SB3 asks this for (``evaluate_policy`` then reads ``infos[i]["episode"]``).

        :param wrapper_class: The wrapper class.
        :param indices: Indices of the sub-envs, all when None.
        :return: One flag per selected sub-env.
        """
        emulated = issubclass(Monitor, wrapper_class)
        sub_envs = self._sub_envs()
        indices = list(self._get_indices(indices))
        if sub_envs is None:
            return [emulated for _ in indices]
        return [emulated or is_wrapped(sub_envs[index], wrapper_class) for index in indices]

    def _common_options(self) -> dict[str, Any] | None:
        """
        :return: The reset options set by ``set_options``, which a batched reset takes once for all sub-envs.
        """
        if not any(self._options):
            return None
        if any(options != self._options[0] for options in self._options):
            raise ValueError(
                f"{type(self.venv.unwrapped).__name__} resets all sub-envs with one options dict; "
                f"got different options per sub-env: {self._options!r}"
            )
        return dict(self._options[0])


def _import_envpool() -> Any:
    """
    :return: The envpool module.
    :raises ImportError: With install instructions, when envpool is not installed.
    """
    try:
        import envpool
    except ImportError as error:
        raise ImportError(
            "The 'envpool' backend needs the envpool package, which is not installed: "
            "pip install envpool (or pip install 'sb3-gpg[envpool]'). "
            f"Other backends: {[backend for backend in VEC_ENV_BACKENDS if backend != 'envpool']}."
        ) from error
    return envpool


class EnvPoolVecEnv(GymnasiumVecEnv):
    """
    SB3 ``VecEnv`` over an envpool pool (its gymnasium API, synchronous mode), with the semantics of SB3's
    ``DummyVecEnv`` over ``Monitor``-wrapped envs (see the module docstring).

    envpool autoresets in next-step style; the sub-envs whose episode ends are reset at once (``reset(env_id)``).
    envpool fixes seeds when the pool is made, so ``seed(s)`` followed by ``reset()`` makes a new pool whose
    sub-env ``i`` has seed ``s + i`` (unless the current pool has those seeds and has never been reset).
    envpool's C++ environments have their own random streams: trajectories do not match gymnasium's.
    envpool reports a time-limit cut as truncated and not terminated even where the episode also terminated on
    that step, so ``TimeLimit.truncated`` is true there, where gymnasium's ``TimeLimit`` would make it false.

    :param env_id: envpool task id, e.g. ``"CartPole-v1"`` (``envpool.list_all_envs()`` lists them).
    :param num_envs: Number of sub-envs.
    :param seed: Base seed, sub-env ``i`` gets ``seed + i``; a seed outside int32 is taken modulo
        ``2**31 - num_envs`` (envpool's seeds are int32). None draws the base seed
        from numpy's global generator, as ``VecEnv.seed(None)`` does.
    :param make_kwargs: Keyword arguments for ``envpool.make`` (``max_episode_steps``, ``render_mode``, ...).
        ``batch_size`` other than ``num_envs`` (envpool's asynchronous mode) is refused: SB3 steps every sub-env.
    """

    def __init__(self, env_id: str, num_envs: int, seed: int | None = None, **make_kwargs: Any):
        self._envpool = _import_envpool()
        batch_size = make_kwargs.get("batch_size", num_envs)
        if batch_size not in (0, num_envs):
            raise ValueError(
                f"batch_size={batch_size} with num_envs={num_envs} is envpool's asynchronous mode, which returns "
                f"only some sub-envs per step; SB3 steps all of them: leave batch_size out or set it to {num_envs}."
            )
        self._env_id = env_id
        self._make_kwargs = make_kwargs
        self._pool_seeds = self._seed_list(seed, num_envs)
        self._pool_fresh = True
        super().__init__(self._make_pool(self._pool_seeds))

    @staticmethod
    def _seed_list(seed: int | None, num_envs: int) -> list[int]:
        """
        :param seed: Base seed, or None for one drawn from numpy's global generator.
        :param num_envs: Number of sub-envs.
        :return: The per-sub-env seeds ``seed + i``.
        """
        low, high = -(2**31), 2**31 - num_envs
        if seed is None:
            seed = int(np.random.randint(0, high))
        if not low <= seed <= high:
            # envpool's seeds are int32, SB3's and the Zoo's are any int (the Zoo draws up to 2**32 - 1): fold
            # them in deterministically rather than fail in set_random_seed.
            seed = seed % high
        return [seed + index for index in range(num_envs)]

    def _make_pool(self, seeds: list[int]) -> gym.vector.VectorEnv:
        """
        :param seeds: One seed per sub-env.
        :return: A new pool.
        """
        return self._envpool.make(self._env_id, env_type="gymnasium", num_envs=len(seeds), seed=seeds, **self._make_kwargs)

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """
        Set the seeds of the next :meth:`reset`: sub-env ``i`` gets ``seed + i``.

        :param seed: Base seed (outside int32: taken modulo ``2**31 - num_envs``), or None for one drawn from numpy's
            global generator.
        :return: The per-sub-env seeds.
        """
        self._seeds = list(self._seed_list(seed, self.num_envs))
        return self._seeds

    def _supports_partial_reset(self) -> bool:
        return True

    def _backend_reset(self) -> tuple[VecEnvObs, dict[str, Any]]:
        if self._common_options() is not None:
            raise ValueError(f"envpool takes no reset options; got {self._options[0]!r}.")
        if any(seed is not None for seed in self._seeds):
            seeds = [int(seed) for seed in self._seeds]  # type: ignore[arg-type]
            if not (self._pool_fresh and seeds == self._pool_seeds):
                self.venv.close()
                self.venv = self._make_pool(seeds)
                self._pool_seeds = seeds
        self._pool_fresh = False
        return self.venv.reset()

    def _partial_reset(self, ended: np.ndarray, mask: np.ndarray) -> tuple[VecEnvObs, list[dict[str, Any]]]:
        obs, info = self.venv.reset(ended.astype(np.int32))
        # Rows come back in envpool's order; put them in the (ascending) order of ``ended``.
        order = np.argsort(info["env_id"], kind="stable")
        return _take(obs, order), [_unbatch_info(info, index) for index in order]

    def _backend_step_async(self, actions: np.ndarray) -> None:
        self._pool_fresh = False
        self.venv.send(actions)

    def _backend_step_wait(self) -> tuple[VecEnvObs, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        return self.venv.recv()

    def _render_frames(self) -> Sequence[np.ndarray | None] | None:
        return self.venv.render(env_ids=self.venv.all_env_ids)


def _make_gymnasium_vector_env(
    env_id: str, n_envs: int, env_kwargs: dict[str, Any], vectorization_mode: str | None
) -> gym.vector.VectorEnv:
    """
    ``gymnasium.make_vec`` with same-step autoreset where the backend offers it.

    :param env_id: Registered gymnasium env id.
    :param n_envs: Number of sub-envs.
    :param env_kwargs: Keyword arguments for the env constructor.
    :param vectorization_mode: ``"sync"``, ``"async"``, ``"vector_entry_point"``, or None for gymnasium's choice
        (the native implementation where the env registers one).
    :return: The vector env.
    """
    if vectorization_mode is None:
        has_native = gym.spec(env_id).vector_entry_point is not None
        mode = VectorizeMode.VECTOR_ENTRY_POINT if has_native else VectorizeMode.SYNC
    else:
        try:
            mode = VectorizeMode(vectorization_mode)
        except ValueError:
            raise ValueError(
                f"Unknown vectorization_mode {vectorization_mode!r}, valid modes: {[m.value for m in VectorizeMode]}"
            ) from None
    # Native implementations take no vector_kwargs; their NEXT_STEP autoreset is translated by GymnasiumVecEnv.
    vector_kwargs = {} if mode == VectorizeMode.VECTOR_ENTRY_POINT else {"autoreset_mode": AutoresetMode.SAME_STEP}

    def make(**kwargs: Any) -> gym.vector.VectorEnv:
        return gym.make_vec(env_id, num_envs=n_envs, vectorization_mode=mode, vector_kwargs=vector_kwargs, **kwargs)

    # Like SB3's make_vec_env: render_mode="rgb_array" unless told otherwise, so render() works, for envs that take it.
    try:
        return make(**{"render_mode": "rgb_array", **env_kwargs})
    except TypeError:
        return make(**env_kwargs)


def make_vec_env(
    env_id: str,
    n_envs: int,
    backend: str = "gymnasium",
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    vectorization_mode: str | None = None,
) -> VecEnv:
    """
    Create a ``VecEnv`` with SB3's semantics (those of ``DummyVecEnv`` over ``Monitor``-wrapped envs) on any backend.

    :param env_id: Env id: a registered gymnasium id, or an envpool task id for ``backend="envpool"``.
    :param n_envs: Number of sub-envs.
    :param backend: ``"dummy"`` or ``"subproc"``: SB3's ``make_vec_env`` with ``DummyVecEnv``/``SubprocVecEnv``;
        ``"gymnasium"``: :class:`GymnasiumVecEnv` over ``gymnasium.make_vec``; ``"envpool"``: :class:`EnvPoolVecEnv`.
    :param seed: Base seed: sub-env ``i`` is seeded with ``seed + i`` at the first reset (the action space is
        seeded with ``seed``, as SB3 seeds the first sub-env's). With ``"dummy"``/``"subproc"`` and
        ``"gymnasium"`` in ``"sync"``/``"async"`` mode, the same seed gives the same trajectories on all of them.
        None: random seeds, as in SB3.
    :param env_kwargs: Keyword arguments for the env constructor (``gymnasium.make``, the native vector env, or
        ``envpool.make``), e.g. ``{"max_episode_steps": 200}``.
    :param vectorization_mode: Only for ``backend="gymnasium"``: ``"sync"``, ``"async"`` or
        ``"vector_entry_point"`` (a native batched implementation, e.g. CartPole's). None: the native one where
        the env registers one, else ``"sync"``.
    :return: The vectorized environment.
    """
    check_backend(backend)
    if vectorization_mode is not None and backend != "gymnasium":
        raise ValueError(
            f"vectorization_mode={vectorization_mode!r} only applies to backend='gymnasium', not backend={backend!r}."
        )
    env_kwargs = env_kwargs or {}
    vec_env: VecEnv
    if backend in ("dummy", "subproc"):
        vec_env_cls = DummyVecEnv if backend == "dummy" else SubprocVecEnv
        return sb3_make_vec_env(env_id, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs, vec_env_cls=vec_env_cls)
    if backend == "envpool":
        vec_env = EnvPoolVecEnv(env_id, n_envs, seed=seed, **env_kwargs)
    else:
        vec_env = GymnasiumVecEnv(_make_gymnasium_vector_env(env_id, n_envs, env_kwargs, vectorization_mode))
        # Seeds take effect at the first reset, as after SB3's make_vec_env (None draws random ones, as there).
        vec_env.seed(seed)
    if seed is not None:
        vec_env.action_space.seed(seed)
    return vec_env


def reset_with_seeds(env: VecEnv, seeds: Sequence[int]) -> VecEnvObs:
    """
    Reset every sub-env of ``env`` with a seed of its own choosing (equal seeds: equal initial states), through any
    ``VecEnvWrapper`` (``VecNormalize``, ``VecMonitor``...), so that the wrappers see the reset as usual.

    SB3's ``VecEnv.seed(s)`` can only give sub-env ``i`` the seed ``s + i``; the seeds of the next reset are the
    base env's ``_seeds``, which ``DummyVecEnv``, ``SubprocVecEnv`` and this module's backends all read.

    :param env: The env.
    :param seeds: One seed per sub-env.
    :return: The first observations.
    :raises ValueError: for a backend that cannot reset a sub-env to a chosen seed.
    """
    base = env.unwrapped
    per_env = isinstance(base, (DummyVecEnv, SubprocVecEnv, EnvPoolVecEnv)) or (
        isinstance(base, GymnasiumVecEnv) and isinstance(base.venv.unwrapped, (SyncVectorEnv, AsyncVectorEnv))
    )
    if not per_env:
        inner = base.venv.unwrapped if isinstance(base, GymnasiumVecEnv) else base
        raise ValueError(
            f"{type(inner).__name__} cannot reset a sub-env to a seed of its own (a native vector env keeps one "
            "generator for all sub-envs): use the dummy, subproc or envpool backend, or the gymnasium backend with "
            "vectorization_mode='sync' or 'async'."
        )
    if len(seeds) != base.num_envs:
        raise ValueError(f"reset_with_seeds got {len(seeds)} seeds for {base.num_envs} sub-envs.")
    base._seeds = [int(seed) for seed in seeds]
    return env.reset()


def reseed_generators(env: VecEnv, seeds: Sequence[int]) -> bool:
    """
    Give each sub-env's random generator (gymnasium's ``np_random``) a new seed without resetting it: sub-envs
    reset with equal seeds then draw independent randomness from here on (stochastic dynamics, noise).

    :param env: The env.
    :param seeds: One seed per sub-env.
    :return: Whether it could be done: not on envpool or native vector envs, which hold no gymnasium sub-envs.
    """
    base = env.unwrapped
    if isinstance(base, GymnasiumVecEnv) and base._sub_envs() is None:
        return False
    for index, seed in enumerate(seeds):
        env.set_attr("np_random", np.random.default_rng(int(seed)), indices=[index])
    return True

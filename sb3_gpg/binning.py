"""Binning functions ``f(s, t)`` of Group Policy Gradient (paper section 3.1).

A binning function maps a batch of observations and their episode times to integer bin keys. Steps whose
keys are equal share a group baseline. Keys are returned either as a vector ``(n,)`` or as a matrix
``(n, k)`` whose rows are compared as tuples (the spatial binnings), so no hashing of Python objects ever
happens in the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

#: A user binning: ``f(observations, episode_times) -> keys`` with observations of shape ``(n, *obs_shape)``
#: (a dict of such arrays for ``Dict`` spaces), episode times of shape ``(n,)`` and keys of shape ``(n,)``
#: or ``(n, k)``.
BinningCallable = Callable[[np.ndarray | dict[str, np.ndarray], np.ndarray], np.ndarray]

BINNING_NAMES = ("time", "none", "space", "space_time", "state")
SPATIAL_BINNINGS = ("space", "space_time")


@dataclass(frozen=True)
class Binning:
    """
    A validated binning function, ready to be applied to a rollout.

    :param name: One of ``BINNING_NAMES`` or ``"custom"``.
    :param key_fn: ``(observations, episode_times) -> keys``.
    :param keys_include_time: Whether the key contains the episode time. Then no trajectory can visit a bin
        twice, every step is a first visit and the estimator skips the first-visit search.
    :param coarser: The coarser binnings a sparse bin falls back on, finest first (``min_bin_samples`` of
        :func:`~sb3_gpg.estimator.group_advantages`): ``"space_time"`` has ``("time", "none")``, ``"none"``
        has none, every other binning (a custom one included) has the universal bin ``("none",)``.
    """

    name: str
    key_fn: BinningCallable
    keys_include_time: bool
    coarser: tuple[Binning, ...] = ()

    def __call__(self, observations: np.ndarray | dict[str, np.ndarray], episode_times: np.ndarray) -> np.ndarray:
        keys = np.asarray(self.key_fn(observations, episode_times))
        n = len(episode_times)
        if keys.ndim not in (1, 2) or keys.shape[0] != n:
            raise ValueError(
                f"The {self.name!r} binning returned bin keys of shape {keys.shape} for {n} steps: "
                f"a binning must return one key per step, shape ({n},) or ({n}, k)."
            )
        if keys.dtype.kind not in "biuf":
            raise ValueError(
                f"The {self.name!r} binning returned bin keys of dtype {keys.dtype}: keys must be numbers "
                "(bool, int or float), one row per step."
            )
        return keys


def _time_keys(observations: np.ndarray | dict[str, np.ndarray], episode_times: np.ndarray) -> np.ndarray:
    return episode_times


def _universal_keys(observations: np.ndarray | dict[str, np.ndarray], episode_times: np.ndarray) -> np.ndarray:
    return np.zeros(len(episode_times), dtype=np.int64)


UNIVERSAL_BINNING = Binning("none", _universal_keys, keys_include_time=False)
TIME_BINNING = Binning("time", _time_keys, keys_include_time=True, coarser=(UNIVERSAL_BINNING,))


def _check_bin_size(bin_size: float | Sequence[float], observation_space: spaces.Box) -> np.ndarray:
    eps = np.asarray(bin_size, dtype=np.float64)
    n_dims = int(np.prod(observation_space.shape))
    if eps.ndim == 0:
        eps = np.full(n_dims, float(eps))
    elif eps.ndim != 1 or eps.shape[0] != n_dims:
        raise ValueError(
            f"bin_size={bin_size!r} has {eps.size} values but the observation space {observation_space} has "
            f"{n_dims} dimensions: pass one float, or one value per observation dimension."
        )
    if not np.all(np.isfinite(eps) & (eps > 0)):
        raise ValueError(f"bin_size={bin_size!r} must be positive and finite (one float, or one per dimension).")
    return eps


def _space_keys(observations: np.ndarray, inv_eps: np.ndarray) -> np.ndarray:
    flat = np.asarray(observations).reshape(len(observations), -1)
    if flat.dtype != np.float32:
        flat = flat.astype(np.float64)
    # floor(x + 0.5) rather than np.round: half-up rounding, the same in the reference tests. float32
    # observations stay float32 (SB3 stores them so): half the memory traffic of a float64 copy.
    return np.floor(flat * inv_eps.astype(flat.dtype) + 0.5).astype(np.int64)


def make_binning(
    binning: str | BinningCallable,
    observation_space: spaces.Space,
    bin_size: float | Sequence[float] = 1.0,
) -> Binning:
    """
    Build and validate a binning function for an observation space.

    :param binning: ``"time"`` (``f = t``, the paper's default), ``"none"`` (one universal bin),
        ``"space"`` (``round(s / bin_size)``), ``"space_time"`` (``(round(s / bin_size), t)``),
        ``"state"`` (``f = s`` for discrete observations) or a callable
        ``f(observations, episode_times) -> keys``.
    :param observation_space: The environment's observation space.
    :param bin_size: The cell size ε of the spatial binnings: one float, or one per observation dimension.
        Ignored by the other binnings.
    :return: The validated binning.
    """
    if callable(binning):
        return Binning("custom", binning, keys_include_time=False, coarser=(UNIVERSAL_BINNING,))
    if not isinstance(binning, str) or binning not in BINNING_NAMES:
        raise ValueError(
            f"Unknown binning {binning!r}: valid binnings are {', '.join(BINNING_NAMES)} or a callable f(obs, t)."
        )

    if binning == "time":
        return TIME_BINNING
    if binning == "none":
        return UNIVERSAL_BINNING

    if binning in SPATIAL_BINNINGS:
        if not isinstance(observation_space, spaces.Box):
            raise ValueError(
                f"binning={binning!r} needs a continuous Box observation space, got {observation_space}: "
                "use 'time', 'none', 'state' (discrete observations) or a callable binning."
            )
        inv_eps = 1.0 / _check_bin_size(bin_size, observation_space)
        if binning == "space":
            return Binning(
                "space", lambda obs, t: _space_keys(obs, inv_eps), keys_include_time=False, coarser=(UNIVERSAL_BINNING,)
            )
        return Binning(
            "space_time",
            lambda obs, t: np.column_stack((_space_keys(obs, inv_eps), t)),
            keys_include_time=True,
            coarser=(TIME_BINNING, UNIVERSAL_BINNING),
        )

    # binning == "state"
    discrete = isinstance(observation_space, (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)) or (
        isinstance(observation_space, spaces.Box) and np.issubdtype(observation_space.dtype, np.integer)
    )
    if not discrete:
        raise ValueError(
            f"binning='state' gives every observation its own bin and needs a discrete observation space "
            f"(Discrete, MultiDiscrete, MultiBinary or an integer Box), got {observation_space}: "
            "use 'space' or 'space_time' with a bin_size for continuous observations."
        )
    return Binning(
        "state",
        lambda obs, t: np.asarray(obs).reshape(len(t), -1).astype(np.int64),
        keys_include_time=False,
        coarser=(UNIVERSAL_BINNING,),
    )

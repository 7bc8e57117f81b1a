"""Binning functions ``f(s, t)`` of Group Policy Gradient (paper section 3.1).

A binning function maps a batch of observations and their episode times to integer bin keys. Steps whose
keys are equal share a group baseline. Keys are returned either as a vector ``(n,)`` or as a matrix
``(n, k)`` whose rows are compared as tuples (the spatial binnings), so no hashing of Python objects ever
happens in the hot path.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from sb3_gpg.arguments import ArgumentError

#: A user binning: ``f(observations, episode_times) -> keys`` with observations of shape ``(n, *obs_shape)``
#: (a dict of such arrays for ``Dict`` spaces), episode times of shape ``(n,)`` and keys of shape ``(n,)``
#: or ``(n, k)``.
BinningCallable = Callable[[np.ndarray | dict[str, np.ndarray], np.ndarray], np.ndarray]

BINNING_NAMES = ("time", "none", "space", "space_time", "state")
#: The binnings that read ``bin_size``.
SPATIAL_BINNINGS = ("space", "space_time")
#: The cell size ε of the spatial binnings when ``bin_size`` is not given.
DEFAULT_BIN_SIZE = 1.0


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
    #: The key function returns floats that are cast to int64 once checked (the spatial binnings' cell indices).
    integer_keys: bool = False
    #: The key function gives the state part of the key, and the episode time is appended as its last column.
    append_time: bool = False

    def __call__(
        self, observations: np.ndarray | dict[str, np.ndarray], episode_times: np.ndarray, n_envs: int = 1
    ) -> np.ndarray:
        """
        The bin keys of a batch of steps.

        :param observations: ``(n, *obs_shape)`` observations (a dict of such arrays for ``Dict`` spaces).
        :param episode_times: ``(n,)`` steps since each episode's reset.
        :param n_envs: The steps are a rollout's rows of ``n_envs`` envs, flattened (to name a bad step's env).
        :return: ``(n,)`` or ``(n, k)`` keys.
        :raises ValueError: for keys of the wrong shape or type, or non-finite keys, naming the env and the step.
        """
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
        if keys.dtype.kind == "f":
            # NaN never equals itself: a NaN key would put its step in a bin of its own or not, depending on the
            # key's shape. Integer cells beyond 2**62 would wrap around when cast. min/max propagate NaN, so two
            # reductions check every key; the bad step is searched for only when there is one.
            limit = 2.0**62 if self.integer_keys else np.inf
            if keys.size and not (-limit < keys.min() and keys.max() < limit):
                bad = ~(np.abs(keys) < limit).reshape(n, -1).all(axis=1)
                step = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"The {self.name!r} binning gave the bin key {keys[step]!r} for env {step % n_envs} at rollout step "
                    f"{step // n_envs}: bin keys must be finite{' integers below 2**62' if self.integer_keys else ''}. "
                    "Check the observations (or the custom binning function)."
                )
            if self.integer_keys:
                keys = keys.astype(np.int64)
        if self.append_time:
            keys = np.column_stack((keys.reshape(n, -1), episode_times))
        return keys


def _time_keys(observations: np.ndarray | dict[str, np.ndarray], episode_times: np.ndarray) -> np.ndarray:
    return episode_times


def _universal_keys(observations: np.ndarray | dict[str, np.ndarray], episode_times: np.ndarray) -> np.ndarray:
    return np.zeros(len(episode_times), dtype=np.int64)


UNIVERSAL_BINNING = Binning("none", _universal_keys, keys_include_time=False)
TIME_BINNING = Binning("time", _time_keys, keys_include_time=True, coarser=(UNIVERSAL_BINNING,))


def check_binning(binning: str | BinningCallable) -> str | BinningCallable:
    """
    :param binning: A ``binning`` argument.
    :return: ``binning``, if it is a callable or one of :data:`BINNING_NAMES`.
    :raises ArgumentError: naming the valid binnings.
    """
    if not callable(binning) and (not isinstance(binning, str) or binning not in BINNING_NAMES):
        raise ArgumentError(
            "binning",
            f"Unknown binning={binning!r}: valid binnings are {', '.join(BINNING_NAMES)} or a callable f(obs, t).",
        )
    return binning


def check_bin_size(bin_size: float | Sequence[float] | None) -> np.ndarray | None:
    """
    :param bin_size: A ``bin_size`` argument: one cell size, one per observation dimension, or ``None``.
    :return: The cell sizes as a float64 array (0-d for one), or ``None``.
    :raises ArgumentError: for anything but positive finite numbers.
    """
    if bin_size is None:
        return None
    try:
        eps = np.asarray(bin_size, dtype=np.float64)
    except (TypeError, ValueError):
        eps = None
    if eps is None or eps.ndim > 1 or np.asarray(bin_size).dtype.kind not in "iuf" or not np.all(np.isfinite(eps) & (eps > 0)):
        raise ArgumentError(
            "bin_size", f"bin_size={bin_size!r} must be a positive finite number, or a list of one per observation dimension."
        )
    return eps


def _cell_sizes(bin_size: float | Sequence[float] | None, observation_space: spaces.Box) -> np.ndarray:
    eps = check_bin_size(DEFAULT_BIN_SIZE if bin_size is None else bin_size)
    assert eps is not None
    n_dims = int(np.prod(observation_space.shape))
    if eps.ndim == 0:
        return np.full(n_dims, float(eps))
    if eps.shape[0] != n_dims:
        raise ArgumentError(
            "bin_size",
            f"bin_size={bin_size!r} has {eps.size} values but the observation space {observation_space} has "
            f"{n_dims} dimensions: pass one float, or one value per observation dimension.",
        )
    return eps


def _space_keys(observations: np.ndarray, inv_eps: np.ndarray) -> np.ndarray:
    flat = np.asarray(observations).reshape(len(observations), -1)
    if flat.dtype != np.float32:
        flat = flat.astype(np.float64)
    # floor(x + 0.5) rather than np.round: half-up rounding, the same in the reference tests. float32
    # observations stay float32 (SB3 stores them so): half the memory traffic of a float64 copy. The cells stay
    # floats until Binning has checked them (integer_keys).
    return np.floor(flat * inv_eps.astype(flat.dtype) + 0.5)


def make_binning(
    binning: str | BinningCallable,
    observation_space: spaces.Space,
    bin_size: float | Sequence[float] | None = None,
) -> Binning:
    """
    Build and validate a binning function for an observation space.

    :param binning: ``"time"`` (``f = t``, the paper's default), ``"none"`` (one universal bin),
        ``"space"`` (``round(s / bin_size)``), ``"space_time"`` (``(round(s / bin_size), t)``),
        ``"state"`` (``f = s`` for discrete observations) or a callable
        ``f(observations, episode_times) -> keys``.
    :param observation_space: The environment's observation space.
    :param bin_size: The cell size ε of the spatial binnings: one float, or one per observation dimension
        (default :data:`DEFAULT_BIN_SIZE`). The other binnings ignore it, with a warning when it is given.
    :return: The validated binning.
    :raises ArgumentError: for an unknown binning, one that does not fit the observation space, or a bad
        ``bin_size``.
    """
    check_binning(binning)
    check_bin_size(bin_size)
    if bin_size is not None and binning not in SPATIAL_BINNINGS:
        name = "a custom" if callable(binning) else f"the {binning!r}"
        warnings.warn(
            f"bin_size={bin_size!r} is ignored: {name} binning has no cells (only {' and '.join(SPATIAL_BINNINGS)} read "
            "it). Remove bin_size, or use a spatial binning.",
            UserWarning,
            stacklevel=3,
        )
    if callable(binning):
        return Binning("custom", binning, keys_include_time=False, coarser=(UNIVERSAL_BINNING,))
    if binning == "time":
        return TIME_BINNING
    if binning == "none":
        return UNIVERSAL_BINNING

    if binning in SPATIAL_BINNINGS:
        if not isinstance(observation_space, spaces.Box):
            raise ArgumentError(
                "binning",
                f"binning={binning!r} needs a continuous Box observation space, got {observation_space}: "
                "use 'time', 'none', 'state' (discrete observations) or a callable binning.",
            )
        inv_eps = 1.0 / _cell_sizes(bin_size, observation_space)
        if binning == "space":
            return Binning(
                "space",
                lambda obs, t: _space_keys(obs, inv_eps),
                keys_include_time=False,
                coarser=(UNIVERSAL_BINNING,),
                integer_keys=True,
            )
        return Binning(
            "space_time",
            lambda obs, t: _space_keys(obs, inv_eps),
            keys_include_time=True,
            coarser=(TIME_BINNING, UNIVERSAL_BINNING),
            integer_keys=True,
            append_time=True,
        )

    # binning == "state"
    discrete = isinstance(observation_space, (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)) or (
        isinstance(observation_space, spaces.Box) and np.issubdtype(observation_space.dtype, np.integer)
    )
    if not discrete:
        raise ArgumentError(
            "binning",
            f"binning='state' gives every observation its own bin and needs a discrete observation space "
            f"(Discrete, MultiDiscrete, MultiBinary or an integer Box), got {observation_space}: "
            "use 'space' or 'space_time' with a bin_size for continuous observations.",
        )
    return Binning(
        "state",
        lambda obs, t: np.asarray(obs).reshape(len(t), -1).astype(np.int64),
        keys_include_time=False,
        coarser=(UNIVERSAL_BINNING,),
    )

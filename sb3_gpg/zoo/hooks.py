"""
Two names of ``rl_zoo3.exp_manager`` that :class:`~sb3_gpg.zoo.GPGExperimentManager` routes per call:
``make_vec_env`` (a batched ``--vec-env`` backend) and ``optuna.create_study`` (a study storage with heartbeats).

The Zoo's ``ExperimentManager`` builds its envs with its module-level ``make_vec_env`` and its study with
``optuna.create_study``, and offers no argument for either. Swapping these names around each call is not safe:
``-optimize --n-jobs N`` runs trials in threads, which build their envs at the same time, and one thread would
build its envs with another's backend. So :func:`install` replaces them once, by dispatchers that do what the Zoo
does unless a context variable of the calling thread says otherwise; :func:`vec_env_factory` and
:func:`study_storage` set it around one call.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import optuna
from rl_zoo3 import exp_manager as zoo_exp_manager
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from sb3_gpg.vec_env import make_vec_env as make_batched_env
from sb3_gpg.zoo.config import ZooConfigError

# Unset (None): the Zoo's make_vec_env. Context variables: each thread of Optuna's n_jobs > 1 has its own.
_vec_env_factory: contextvars.ContextVar[Callable[..., VecEnv] | None] = contextvars.ContextVar(
    "gpg_vec_env_factory", default=None
)
_study_hook: contextvars.ContextVar[StudyHook | None] = contextvars.ContextVar("gpg_study_hook", default=None)
# What rl_zoo3.exp_manager.make_vec_env was before install() (SB3's make_vec_env).
_zoo_make_vec_env: Callable[..., VecEnv] | None = None
_install_lock = threading.Lock()


def dispatch_make_vec_env(env_id: Any, n_envs: int = 1, **kwargs: Any) -> VecEnv:
    """
    ``rl_zoo3.exp_manager.make_vec_env`` once installed: the factory that :func:`vec_env_factory` set in this
    context, else the Zoo's own (SB3's ``make_vec_env``).
    """
    factory = _vec_env_factory.get() or _zoo_make_vec_env
    assert factory is not None, "install() sets the Zoo's make_vec_env aside before dispatch_make_vec_env is called"
    return factory(env_id, n_envs=n_envs, **kwargs)


@dataclass
class StudyHook:
    """
    What the Zoo's ``optuna.create_study`` call does within :func:`study_storage`.

    :param storage: The storage that replaces the Zoo's ``--storage`` URL (``None``: the Zoo's storage is kept).
    :param study: The study the Zoo created, once it has.
    """

    storage: optuna.storages.BaseStorage | None
    study: optuna.Study | None = None


class _ZooOptuna(types.ModuleType):
    """``rl_zoo3.exp_manager``'s view of ``optuna`` once installed: optuna itself, but for ``create_study``."""

    def __init__(self) -> None:
        super().__init__("optuna", optuna.__doc__)

    def __getattr__(self, name: str) -> Any:
        return getattr(optuna, name)

    @staticmethod
    def create_study(*args: Any, **kwargs: Any) -> optuna.Study:
        hook = _study_hook.get()
        # The Zoo passes its --storage URL as a string, or a JournalStorage it made for a journal file.
        if hook is not None and hook.storage is not None and isinstance(kwargs.get("storage"), str):
            kwargs["storage"] = hook.storage
        study = optuna.create_study(*args, **kwargs)
        if hook is not None:
            hook.study = study
        return study


def install() -> None:
    """Put the dispatchers into ``rl_zoo3.exp_manager``. Calling it again (from any thread) is harmless."""
    global _zoo_make_vec_env
    with _install_lock:
        if zoo_exp_manager.make_vec_env is not dispatch_make_vec_env:
            _zoo_make_vec_env = zoo_exp_manager.make_vec_env
            zoo_exp_manager.make_vec_env = dispatch_make_vec_env
        if not isinstance(zoo_exp_manager.optuna, _ZooOptuna):
            zoo_exp_manager.optuna = _ZooOptuna()


@contextlib.contextmanager
def vec_env_factory(factory: Callable[..., VecEnv]) -> Iterator[None]:
    """Within this block, in this thread, the Zoo builds its envs with ``factory`` (``make_vec_env``'s arguments)."""
    token = _vec_env_factory.set(factory)
    try:
        yield
    finally:
        _vec_env_factory.reset(token)


@contextlib.contextmanager
def study_storage(storage: optuna.storages.BaseStorage | None) -> Iterator[StudyHook]:
    """
    Within this block, in this thread, the Zoo creates its study in ``storage`` instead of its ``--storage`` URL.

    :param storage: The storage (``None``: the Zoo's own).
    :return: The hook, whose ``study`` is the study the Zoo created.
    """
    hook = StudyHook(storage)
    token = _study_hook.set(hook)
    try:
        yield hook
    finally:
        _study_hook.reset(token)


def batched_vec_env(
    backend: str,
    gym_id: str,
    env_id: Any,
    n_envs: int = 1,
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    monitor_dir: str | None = None,
    wrapper_class: Callable | None = None,
    **_: Any,
) -> VecEnv:
    """
    The env of a batched ``--vec-env`` backend in place of the Zoo's ``make_vec_env(env_id, ...)`` call; the
    rest of the Zoo's pipeline (``vec_env_wrapper``, ``VecNormalize``, frame stacking) wraps it unchanged.

    :param backend: ``gymnasium`` or ``envpool`` (see :func:`sb3_gpg.vec_env.make_vec_env`).
    :param gym_id: The env id (the Zoo passes a function that makes one env as ``env_id``).
    :param env_id: The Zoo's env maker (unused: a batched backend makes all envs at once).
    :param n_envs: Number of envs.
    :param seed: Base seed.
    :param env_kwargs: Keyword arguments of the env.
    :param monitor_dir: Where the Zoo wants monitor files; ``None``: none.
    :param wrapper_class: The entry's ``env_wrapper``: refused, a batched backend does not build envs one by one.
    :return: The batched env.
    """
    if wrapper_class is not None:
        raise ZooConfigError(
            f"env_wrapper wraps each gymnasium env, which --vec-env {backend} does not build one by one: remove it, "
            "use vec_env_wrapper, or --vec-env dummy."
        )
    env = make_batched_env(gym_id, n_envs, backend=backend, seed=seed, env_kwargs=env_kwargs)
    if monitor_dir is not None:
        # The Zoo's plot_train reads monitor files; the batched env's episode statistics are SB3 Monitor's
        # already, so VecMonitor's warning about an inner Monitor does not apply.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            env = VecMonitor(env, filename=os.path.join(monitor_dir, "batched"))
    return env

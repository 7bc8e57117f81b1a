"""The Zoo's ``ExperimentManager`` for GPG: default config, checks, batched backends, tuning of envs, heartbeats."""

from __future__ import annotations

import copy
import functools
import inspect
import os
import socket
import traceback
import warnings
from typing import Any

import optuna
from gymnasium import spaces
from optuna.trial import TrialState
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.utils import get_wrapper_class
from stable_baselines3.common.vec_env import VecEnv

from sb3_gpg.arguments import ArgumentError
from sb3_gpg.vec_env import check_backend
from sb3_gpg.zoo import hooks
from sb3_gpg.zoo.checks import check_hyperparameters, key_source, observation_space_of
from sb3_gpg.zoo.config import ALGO, ZooConfigError, default_config_path, entry_name, load_config
from sb3_gpg.zoo.search import SearchSpace, drawing_from, sample_bonus
from sb3_gpg.zoo.tuning import Heartbeat, heartbeat_storage, is_journal

#: The Zoo's own env backends (its ``--vec-env``); the others are batched (:mod:`sb3_gpg.vec_env`).
ZOO_BACKENDS = ("dummy", "subproc")


class GPGExperimentManager(ExperimentManager):
    """
    The Zoo's ``ExperimentManager`` (same arguments), with additions for ``algo="gpg"`` and for tuning; other
    algorithms train unchanged.

    - Without a ``config`` (``--conf-file``), the packaged ``gpg.yml`` (:func:`~sb3_gpg.zoo.default_config_path`) is
      used instead of ``rl_zoo3/hyperparams/gpg.yml``, which does not exist.
    - The entry is checked with :func:`~sb3_gpg.zoo.check_hyperparameters` (against the env's observation space)
      when it is read, before any env, log folder or model is made.
    - ``vec_env_backend`` adds the batched backends ``gymnasium`` and ``envpool`` to the Zoo's ``dummy`` and
      ``subproc``.
    - ``-optimize`` tunes ``n_envs`` and, for observations it fits, the novelty bonus
      (:class:`~sb3_gpg.exploration.VecCountBonus`): each trial draws them and builds its envs with them (see
      :func:`~sb3_gpg.zoo.sample_gpg_params`), and records the worker (``host:pid``) that ran it in its user
      attributes.
    - ``-optimize`` with a database ``--storage`` (any algorithm) keeps heartbeats, so that the trial of a killed
      worker is failed and retried (:mod:`sb3_gpg.zoo.tuning`), and a search in which no trial completed (Ctrl-C
      before the first one) ends with a message instead of a traceback.

    :param vec_env_backend: ``--vec-env``: ``dummy``, ``subproc``, ``gymnasium`` or ``envpool``.
    :param heartbeat: How ``-optimize`` notices dead workers (default: :class:`~sb3_gpg.zoo.tuning.Heartbeat`).
    """

    def __init__(self, *args: Any, vec_env_backend: str = "dummy", heartbeat: Heartbeat | None = None, **kwargs: Any) -> None:
        try:
            check_backend(vec_env_backend)
        except ArgumentError as error:
            raise ZooConfigError(f"--vec-env {vec_env_backend}: {error}") from error
        super().__init__(*args, **kwargs)
        hooks.install()
        self.vec_env_backend = vec_env_backend
        self.heartbeat = heartbeat or Heartbeat()
        #: The env's observation space, known once the hyperparameters are read (gpg only).
        self.observation_space: spaces.Space | None = None
        #: The entry's ``vec_env_wrapper`` as written, known once the hyperparameters are read (gpg only).
        self.entry_vec_env_wrapper: Any = None
        arguments = inspect.signature(ExperimentManager.__init__).bind(self, *args, **kwargs).arguments
        if self.algo == ALGO and not arguments.get("config"):
            self.config = str(default_config_path())

    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """
        Read the entry of the env, as the Zoo does, and check it when the algorithm is GPG.

        :return: The hyperparameters and the ones to save (see ``ExperimentManager.read_hyperparameters``).
        """
        if self.algo != ALGO:
            return super().read_hyperparameters()
        entries = load_config(self.config)
        entry = entry_name(entries, self.env_name.gym_id, self._is_atari)
        if entry is None:
            raise ZooConfigError(
                f"{self.config} has no entry for {self.env_name.gym_id} and no 'default' entry: add one. "
                f"Entries: {', '.join(map(str, entries))}."
            )
        hyperparams, saved_hyperparams = super().read_hyperparameters()
        check = functools.partial(
            check_hyperparameters,
            hyperparams,
            self.config,
            entry,
            command_line=self.custom_hyperparams,
            n_timesteps=self.n_timesteps,
        )
        # The entry first, then (with the env made from a valid entry) whether the binning fits its observations.
        check()
        # The Zoo lets the entry's env_kwargs replace those of the command line (after merging them in).
        env_kwargs = hyperparams.get("env_kwargs", self.env_kwargs)
        try:
            self.observation_space = observation_space_of(self.env_name.gym_id, hyperparams, env_kwargs)
        except ArgumentError as error:
            where = key_source(error.argument, self.config, entry, self.custom_hyperparams or {})
            raise ZooConfigError(f"{where}: {error}") from error
        check(observation_space=self.observation_space)
        self.entry_vec_env_wrapper = hyperparams.get("vec_env_wrapper")
        return hyperparams, saved_hyperparams

    def create_envs(self, n_envs: int, eval_env: bool = False, no_log: bool = False) -> VecEnv:
        """
        The Zoo's ``create_envs``; with a batched ``--vec-env`` backend its ``make_vec_env`` call builds the
        batched env instead (:func:`~sb3_gpg.zoo.hooks.batched_vec_env`), and the rest of the Zoo's pipeline wraps it.
        """
        if self.vec_env_backend in ZOO_BACKENDS:
            return super().create_envs(n_envs, eval_env, no_log)
        factory = functools.partial(hooks.batched_vec_env, self.vec_env_backend, self.env_name.gym_id)
        with hooks.vec_env_factory(factory):
            return super().create_envs(n_envs, eval_env, no_log)

    def objective(self, trial: optuna.Trial) -> float:
        """
        The Zoo's objective, with the trial's ``n_envs`` and novelty bonus drawn first (for GPG).

        :param trial: The Optuna trial.
        :return: The trial's last mean evaluation reward.
        """
        if self.algo != ALGO:
            return super().objective(trial)
        space = SearchSpace.for_experiment(self.observation_space, self.n_timesteps, self.entry_vec_env_wrapper)
        # A shallow copy per trial: with n_jobs > 1 the trials of this manager run in threads at once.
        manager = copy.copy(self)
        manager.n_envs = trial.suggest_categorical("n_envs", space.n_envs)
        if space.bonus:
            manager.vec_env_wrapper = get_wrapper_class({"vec_env_wrapper": sample_bonus(trial)}, "vec_env_wrapper")
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        with drawing_from(space):
            return ExperimentManager.objective(manager, trial)

    def hyperparameters_optimization(self) -> None:
        """
        The Zoo's search, in a study whose storage keeps heartbeats (a database ``--storage``: see
        :mod:`sb3_gpg.zoo.tuning`), and which ends with a message, not a traceback, when no trial has completed.
        """
        if self.storage is not None and is_journal(self.storage):
            warnings.warn(
                f"The journal file {self.storage} keeps no heartbeats: the trial of a worker killed mid-trial stays "
                "RUNNING and is not retried. A database storage (sqlite:///study.db, postgresql+psycopg://...) "
                "fails and retries it.",
                UserWarning,
            )
        with hooks.study_storage(heartbeat_storage(self.storage, self.heartbeat)) as hook:
            try:
                super().hyperparameters_optimization()
            except ValueError as error:
                if hook.study is None or not _no_best_trial(hook.study, error):
                    raise
                states = [trial.state.name for trial in hook.study.trials]
                counts = ", ".join(f"{states.count(state)} {state}" for state in sorted(set(states))) or "no trials"
                print(f"No trial of study {hook.study.study_name!r} has completed ({counts}): no best trial to report.")


def _no_best_trial(study: optuna.Study, error: ValueError) -> bool:
    # The Zoo reports study.best_trial, which raises ValueError while no trial has completed (Ctrl-C before the
    # first one, which the Zoo catches, or every trial pruned). A trial's own error comes out of Study.optimize.
    optimize = inspect.unwrap(optuna.Study.optimize).__code__
    from_optimize = any(frame.f_code is optimize for frame, _ in traceback.walk_tb(error.__traceback__))
    return not from_optimize and not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

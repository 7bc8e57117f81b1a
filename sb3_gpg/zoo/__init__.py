"""
RL Zoo (``rl_zoo3``) integration: GPG as a Zoo algorithm.

:func:`register` adds GPG to the Zoo's tables the way the Zoo's own integrations of external algorithms
(SBX, custom algorithms) do: ``rl_zoo3.ALGOS["gpg"]`` and the ``"gpg"`` entries of the hyperparameter
sampler and converter tables of ``rl_zoo3.hyperparams_opt``. Every Zoo script reads these dicts when it builds
its parser and its model, so after :func:`register` ``--algo gpg`` is one of the choices of ``train``,
``enjoy`` and ``record_video``. Nothing is registered by ``import sb3_gpg`` or by importing this package: the
``sb3-gpg`` command line calls :func:`register`, and so can a user's own script.

:class:`GPGExperimentManager` is the Zoo's ``ExperimentManager`` with what ``--algo gpg`` needs: the packaged
``hyperparams/gpg.yml`` as the default config, the YAML entry checked before anything is built
(:func:`check_hyperparameters`), batched env backends, ``n_envs`` tuned by ``-optimize``, and heartbeats that
recover the trials of killed workers in a distributed search.

One module per concern:

- :mod:`~sb3_gpg.zoo.registration`: the Zoo's tables (:func:`register`);
- :mod:`~sb3_gpg.zoo.config`: the hyperparameter file (:func:`default_config_path`, :func:`load_config`);
- :mod:`~sb3_gpg.zoo.checks`: the checks of an entry (:func:`check_hyperparameters`);
- :mod:`~sb3_gpg.zoo.search`: the Optuna search space (:func:`sample_gpg_params`, :class:`SearchSpace`);
- :mod:`~sb3_gpg.zoo.tuning`: study storages with heartbeats (:class:`Heartbeat`);
- :mod:`~sb3_gpg.zoo.hooks`: the Zoo's module-level names that the manager routes per call, thread-safely;
- :mod:`~sb3_gpg.zoo.manager`: the experiment manager (:class:`GPGExperimentManager`).
"""

from sb3_gpg.zoo.checks import (
    MANAGER_ARGUMENTS,
    SCHEDULE_KEYS,
    ZOO_KEYS,
    check_env_id,
    check_hyperparameters,
    observation_space_of,
    valid_keys,
)
from sb3_gpg.zoo.config import ALGO, CONFIG_FILE, ZooConfigError, default_config_path, entry_name, load_config
from sb3_gpg.zoo.manager import GPGExperimentManager
from sb3_gpg.zoo.registration import is_registered, register
from sb3_gpg.zoo.search import (
    BIN_SIZE_CHOICES,
    BONUS_WRAPPER,
    N_ENVS_CHOICES,
    N_MINIBATCHES_CHOICES,
    N_STEPS_POW_RANGE,
    SearchSpace,
    convert_gpg_params,
    drawing_from,
    sample_bonus,
    sample_gpg_params,
    valid_binnings,
)
from sb3_gpg.zoo.tuning import Heartbeat, heartbeat_storage

__all__ = [
    "ALGO",
    "BIN_SIZE_CHOICES",
    "BONUS_WRAPPER",
    "CONFIG_FILE",
    "MANAGER_ARGUMENTS",
    "N_ENVS_CHOICES",
    "N_MINIBATCHES_CHOICES",
    "N_STEPS_POW_RANGE",
    "SCHEDULE_KEYS",
    "ZOO_KEYS",
    "GPGExperimentManager",
    "Heartbeat",
    "SearchSpace",
    "ZooConfigError",
    "check_env_id",
    "check_hyperparameters",
    "convert_gpg_params",
    "default_config_path",
    "drawing_from",
    "entry_name",
    "heartbeat_storage",
    "is_registered",
    "load_config",
    "observation_space_of",
    "register",
    "sample_bonus",
    "sample_gpg_params",
    "valid_binnings",
    "valid_keys",
]

"""Group Policy Gradient (GPG): PPO with the critic replaced by a binned group Monte Carlo baseline."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import FloatSchedule, obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv

from sb3_gpg.arguments import ArgumentError, check_bool, check_choice, check_int, is_number
from sb3_gpg.binning import BinningCallable, check_bin_size, check_binning, make_binning
from sb3_gpg.buffers import GroupDictRolloutBuffer, GroupRolloutBuffer
from sb3_gpg.estimator import EstimatorConfig, GroupStats
from sb3_gpg.policies import NO_CRITIC, CnnPolicy, CriticFreePolicy, MlpPolicy, MultiInputPolicy, actor_net_arch
from sb3_gpg.vec_env import reseed_generators, reset_with_seeds

SelfGPG = TypeVar("SelfGPG", bound="GPG")

CRITIC_ARGUMENTS = ("gae_lambda", "vf_coef", "clip_range_vf")
COLLECTION_MODES = ("window", "episodes", "carry")
OBJECTIVES = ("clip", "pg")
#: The constructor arguments that make up the :class:`~sb3_gpg.estimator.EstimatorConfig`.
ESTIMATOR_ARGUMENTS = tuple(field.name for field in dataclasses.fields(EstimatorConfig))
#: Without a time limit to go by, complete-episode collection gives up once an env has run this many times
#: ``n_steps`` (and at least :data:`_MIN_EPISODE_GUARD` steps) without ending its episode.
_EPISODE_GUARD_FACTOR = 100
_MIN_EPISODE_GUARD = 10_000
# Hyperparameters a PPO model hands to GPG.from_ppo (the critic's are dropped).
_PPO_SHARED_HYPERPARAMETERS = (
    "learning_rate",
    "n_steps",
    "batch_size",
    "n_epochs",
    "gamma",
    "clip_range",
    "normalize_advantage",
    "ent_coef",
    "max_grad_norm",
    "use_sde",
    "sde_sample_freq",
    "target_kl",
)


def _check_number_or_schedule(argument: str, value: Any) -> None:
    if callable(value):
        return
    if not is_number(value):
        raise ArgumentError(
            argument, f"{argument}={value!r} must be a finite number or a schedule (a function of the progress remaining)."
        )


def _check_ppo_arguments(arguments: Mapping[str, Any]) -> None:
    # PPO's own arguments that PPO takes on trust (a YAML "32.5" or "fast" fails deep in SB3 otherwise).
    for name in ("n_steps", "batch_size", "n_epochs"):
        if name in arguments:
            check_int(name, arguments[name])
    for name in ("learning_rate", "clip_range"):
        if name in arguments:
            _check_number_or_schedule(name, arguments[name])
    gamma = arguments.get("gamma", 0.99)
    if not is_number(gamma) or not 0 <= gamma <= 1:
        raise ArgumentError("gamma", f"gamma={gamma!r} must be a number in [0, 1].")
    for name in ("ent_coef", "max_grad_norm"):
        if name in arguments and not is_number(arguments[name]):
            raise ArgumentError(name, f"{name}={arguments[name]!r} must be a finite number.")
    if arguments.get("target_kl") is not None and not (is_number(arguments["target_kl"]) and arguments["target_kl"] > 0):
        raise ArgumentError("target_kl", f"target_kl={arguments['target_kl']!r} must be a positive number or None.")
    if "sde_sample_freq" in arguments:
        check_int("sde_sample_freq", arguments["sde_sample_freq"], minimum=-1)
    if "stats_window_size" in arguments:
        check_int("stats_window_size", arguments["stats_window_size"])
    for name in ("normalize_advantage", "use_sde", "signal_rescale"):
        if name in arguments:
            check_bool(name, arguments[name])


def check_gpg_arguments(arguments: Mapping[str, Any]) -> None:
    """
    The rules on GPG's constructor arguments that GPG checks itself (PPO's own assertions aside), each written
    once: :class:`GPG` calls this before building anything, and the RL Zoo layer calls it on a YAML entry and
    adds which key of which entry of which file is at fault. The binning's fit to the observation space is
    :func:`~sb3_gpg.binning.make_binning`'s, which needs the env.

    :param arguments: Constructor arguments by name; the ones not present are not checked.
    :raises ArgumentError: naming the first bad argument, its value and what would be valid.
    """
    critic = [name for name in CRITIC_ARGUMENTS if name in arguments]
    if critic:
        raise ArgumentError(
            critic[0],
            f"{', '.join(critic)} configure{'s' if len(critic) == 1 else ''} a critic, but {NO_CRITIC}: remove "
            f"{'it' if len(critic) == 1 else 'them'} (critic arguments: {', '.join(CRITIC_ARGUMENTS)}).",
        )
    _check_ppo_arguments(arguments)
    if "collection" in arguments:
        check_choice("collection", arguments["collection"], COLLECTION_MODES)
    if "objective" in arguments:
        check_choice("objective", arguments["objective"], OBJECTIVES)
    if "binning" in arguments:
        check_binning(arguments["binning"])
    check_bin_size(arguments.get("bin_size"))
    estimator = EstimatorConfig(**{name: arguments[name] for name in ESTIMATOR_ARGUMENTS if name in arguments})
    if "shared_starts" in arguments:
        check_shared_starts(arguments["shared_starts"], arguments.get("collection", "window"))
        if arguments["shared_starts"] > 1 and estimator.history_weight:
            raise ArgumentError(
                "history_weight",
                f"history_weight={estimator.history_weight!r} with shared_starts={arguments['shared_starts']}: the "
                "bins of shared starts are new at every rollout, so they have no history. Use one or the other.",
            )
    policy_kwargs = arguments.get("policy_kwargs") or {}
    if not isinstance(policy_kwargs, Mapping):
        raise ArgumentError("policy_kwargs", f"policy_kwargs={policy_kwargs!r} must be a dict of policy arguments.")
    if "net_arch" in policy_kwargs:
        actor_net_arch(policy_kwargs["net_arch"])
    buffer_class = arguments.get("rollout_buffer_class")
    if buffer_class is not None and not (isinstance(buffer_class, type) and issubclass(buffer_class, GroupRolloutBuffer)):
        raise ArgumentError(
            "rollout_buffer_class",
            f"rollout_buffer_class={getattr(buffer_class, '__name__', buffer_class)!r} cannot compute group baselines: "
            "use sb3_gpg.buffers.GroupRolloutBuffer, GroupDictRolloutBuffer or a subclass.",
        )


def check_shared_starts(shared_starts: Any, collection: str, n_envs: int | None = None) -> int:
    """
    :param shared_starts: The ``shared_starts`` argument ``K``.
    :param collection: The collection mode: shared starts need whole episodes (a window would cut the siblings'
        episodes at different times, and their next episodes would not share a start).
    :param n_envs: The number of envs, which ``K`` must divide; ``None`` when not known yet.
    :return: ``K``.
    :raises ArgumentError: naming what would be valid.
    """
    shared_starts = check_int("shared_starts", shared_starts)
    if shared_starts > 1 and collection != "episodes":
        raise ArgumentError(
            "shared_starts",
            f"shared_starts={shared_starts} needs collection='episodes' (got collection={collection!r}): the envs of a "
            "block share the start of whole episodes.",
        )
    if n_envs is not None and n_envs % shared_starts:
        divisors = [k for k in range(1, n_envs + 1) if n_envs % k == 0]
        raise ArgumentError(
            "shared_starts",
            f"shared_starts={shared_starts} does not divide n_envs={n_envs} into blocks: valid values are "
            f"{', '.join(map(str, divisors))}.",
        )
    return shared_starts


def episode_step_limit(env: VecEnv) -> int | None:
    """
    The longest episode an env's time limit allows (``spec.max_episode_steps`` of its sub-envs), or ``None``
    where a sub-env has none or the env cannot tell.

    :param env: The training env.
    """
    try:
        limits = [getattr(spec, "max_episode_steps", None) for spec in env.get_attr("spec")]
    except (AttributeError, NotImplementedError):
        return None
    if not limits or any(not isinstance(limit, (int, np.integer)) or limit <= 0 for limit in limits):
        return None
    return int(max(limits))


class GPG(PPO):
    """
    Group Policy Gradient (GPG), arXiv 2510.03679.

    PPO's clipped surrogate with the learned value function replaced by a group Monte Carlo baseline: the
    returns of the parallel trajectories of a rollout are binned by ``f(s, t)`` and each step's advantage is
    its return minus the mean first-visit return of its bin (paper Algorithm 2). There is no critic: no
    value network, no value loss, no GAE. Arguments keep PPO's names and defaults.

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy, ...)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: The learning rate, it can be a function
        of the current progress remaining (from 1 to 0)
    :param n_steps: The number of steps to run for each environment per update; the group is the
        ``n_envs`` parallel envs' trajectories of one rollout. With ``collection="episodes"`` it is the
        minimum: each env then runs on until its current episode ends.
    :param batch_size: Minibatch size
    :param n_epochs: Number of epoch when optimizing the surrogate loss
    :param gamma: Discount factor of the Monte Carlo returns
    :param clip_range: Clipping parameter, it can be a function of the current progress
        remaining (from 1 to 0).
    :param normalize_advantage: Whether to normalize or not the advantage (per minibatch, as PPO)
    :param ent_coef: Entropy coefficient for the loss calculation
    :param max_grad_norm: The maximum value for the gradient clipping
    :param use_sde: Whether to use generalized State Dependent Exploration (gSDE)
        instead of action noise exploration (default: False)
    :param sde_sample_freq: Sample a new noise matrix every n steps when using gSDE
        Default: -1 (only sample at the beginning of the rollout)
    :param rollout_buffer_class: Rollout buffer class to use, a subclass of
        :class:`~sb3_gpg.buffers.GroupRolloutBuffer`. If ``None``, it will be automatically selected.
    :param rollout_buffer_kwargs: Keyword arguments to pass to the rollout buffer on creation
    :param target_kl: Limit the KL divergence between updates (see PPO)
    :param stats_window_size: Window size for the rollout logging, specifying the number of episodes to average
        the reported success rate, mean episode length, and mean reward over
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation. ``net_arch`` lists
        the actor's layers only.
    :param verbose: Verbosity level: 0 for no output, 1 for info messages (such as device or wrappers used), 2 for
        debug messages
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
        Setting it to auto, the code will be run on the GPU if possible.
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    :param binning: The binning function ``f(s, t)``: ``"time"`` (``f = t``, the paper's default),
        ``"none"`` (one universal bin, GRPO outcome supervision / REINFORCE++), ``"space"``
        (``round(s / bin_size)`` per dimension, ``Box`` observations), ``"space_time"``
        (``(round(s / bin_size), t)``), ``"state"`` (``f = s``, discrete observations) or a callable
        ``f(observations, episode_times) -> keys`` returning one key (or row of keys) per step.
    :param bin_size: The cell size ε of the ``"space"`` and ``"space_time"`` binnings: a float, or one
        value per observation dimension (default 1.0). The other binnings have no cells and ignore it (with a
        warning when it is given).
    :param collection: How a rollout collects the group. ``"window"`` (SB3's usual ``n_steps`` per env):
        trajectories still running when the window closes get truncated returns, a bias the paper accepts.
        ``"episodes"``: every env starts from a reset and runs whole episodes until it has taken at least
        ``n_steps`` steps and its episode ends; no truncated return enters the estimator, as Prop. 2 assumes.
        Envs that finish early keep stepping (a ``VecEnv`` steps all envs) but their steps are left out of the
        group. ``"carry"``: ``n_steps`` per env as the window, but each env's trajectory still running at the end
        is held back and trained on in the next rollout, once its episode has ended: only complete returns, and no
        env waits for another (the held-back steps were sampled by the policy before the last update; PPO's ratio
        and clipping account for that). The step budget of :meth:`learn` counts every env step taken, idle ones
        included, and like SB3's the last rollout may overshoot it; schedules never see a progress below 0.
    :param shared_starts: ``K``, the number of envs that share each initial state (GRPO's group: samples of one
        prompt). The ``n_envs`` envs form ``n_envs / K`` blocks (``K`` must divide ``n_envs``); at each rollout the
        envs of a block reset with a common seed drawn from numpy's generator (seeded by ``seed``), so they start
        from one state while starts differ across blocks and rollouts, and each env then draws its own randomness
        again where the backend allows it (all but envpool). Each env runs one episode per *round*; a rollout runs
        rounds until every env has taken ``n_steps`` steps. The bin key includes the block and round, so a step is
        compared only with its ``K - 1`` siblings: with ``"none"`` binning the baseline is the block's mean return
        (GRPO's outcome supervision), with ``"time"`` the per-start, per-step mean (process supervision). Needs
        ``collection="episodes"``. Default 1: independent starts.
    :param baseline: The bin baseline: ``"mean"`` (Algorithm 2) or ``"leave_one_out"`` (RLOO, the U-statistic
        form). See :class:`~sb3_gpg.estimator.EstimatorConfig`, which documents these four estimator options.
    :param advantage_scale: ``"none"``, or ``"bin_std"`` to divide each advantage by its bin's standard
        deviation of returns, as GRPO does per group. PPO's per-minibatch ``normalize_advantage`` still applies.
    :param min_bin_samples: ``k`` of the coarser-bin fallback, 0 (default) for none: sparse bins borrow the
        baseline of a coarser binning (space-time → time → universal).
    :param bin_fallback: ``"replace"`` or ``"shrink"``: how a sparse bin borrows, see ``min_bin_samples``.
    :param history_weight: ``beta`` in ``[0, 1)``: each bin's baseline also averages the samples of earlier
        rollouts, weighted ``beta ** age``; more samples for sparse bins (few envs, fine cells) at the price of lag
        behind the policy. 0 (default): the current group only. Not with ``shared_starts > 1``, whose bins are new
        each rollout.
    :param signal_rescale: The correction of arXiv 2504.02546 for steps that carry no signal (their return
        equals their bin's baseline, a bin of one trajectory included: their advantage is 0). The per-minibatch
        advantage normalization (if on) is computed over the other steps and leaves them at 0 (otherwise they
        would all get ``-mean / std`` from the minibatch, a signal from nowhere), and the policy loss is
        multiplied by ``N / (N - N_zero)`` for the group's ``N`` steps of which ``N_zero`` carry no signal, so that
        it is the mean over the steps that do. The entropy bonus is not rescaled.
    :param objective: ``"clip"``: PPO's clipped surrogate (the paper's). ``"pg"``: the plain importance-weighted
        policy gradient ``-mean(ratio * A)`` with no clipping (arXiv 2504.02546's direct objective): at the first
        epoch ``ratio = 1`` and its gradient is exactly the policy gradient estimate
        ``-mean(A * grad log pi)``; later epochs and minibatches are not held near the rollout policy
        (``n_epochs=1`` or ``target_kl`` bound them). ``clip_range`` is then only used for the logged
        clip fraction.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    policy: CriticFreePolicy  # type: ignore[assignment]
    rollout_buffer: GroupRolloutBuffer  # type: ignore[assignment]

    def __init__(
        self,
        policy: str | type[CriticFreePolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        n_steps: int = 2048,
        batch_size: int = 64,
        n_epochs: int = 10,
        gamma: float = 0.99,
        clip_range: float | Schedule = 0.2,
        normalize_advantage: bool = True,
        ent_coef: float = 0.0,
        max_grad_norm: float = 0.5,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        rollout_buffer_class: type[RolloutBuffer] | None = None,
        rollout_buffer_kwargs: dict[str, Any] | None = None,
        target_kl: float | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
        binning: str | BinningCallable = "time",
        bin_size: float | Sequence[float] | None = None,
        collection: str = "window",
        shared_starts: int = 1,
        baseline: str = "mean",
        advantage_scale: str = "none",
        min_bin_samples: int = 0,
        bin_fallback: str = "replace",
        history_weight: float = 0.0,
        signal_rescale: bool = False,
        objective: str = "clip",
        **kwargs: Any,
    ):
        if set(kwargs) - set(CRITIC_ARGUMENTS):
            raise TypeError(f"GPG.__init__() got unexpected keyword arguments {sorted(set(kwargs) - set(CRITIC_ARGUMENTS))}")
        check_gpg_arguments(
            dict(
                kwargs,
                n_steps=n_steps,
                batch_size=batch_size,
                n_epochs=n_epochs,
                learning_rate=learning_rate,
                clip_range=clip_range,
                gamma=gamma,
                ent_coef=ent_coef,
                max_grad_norm=max_grad_norm,
                target_kl=target_kl,
                sde_sample_freq=sde_sample_freq,
                stats_window_size=stats_window_size,
                normalize_advantage=normalize_advantage,
                use_sde=use_sde,
                policy_kwargs=policy_kwargs,
                rollout_buffer_class=rollout_buffer_class,
                binning=binning,
                bin_size=bin_size,
                collection=collection,
                shared_starts=shared_starts,
                baseline=baseline,
                advantage_scale=advantage_scale,
                min_bin_samples=min_bin_samples,
                bin_fallback=bin_fallback,
                history_weight=history_weight,
                signal_rescale=signal_rescale,
                objective=objective,
            )
        )
        policy_base = self.policy_aliases["MlpPolicy"]
        if isinstance(policy, type) and not issubclass(policy, policy_base):
            raise ArgumentError(
                "policy",
                f"policy={policy.__name__} is not critic-free: {type(self).__name__} needs a {policy_base.__name__} "
                f"({', '.join(self.policy_aliases)} or a subclass of {policy_base.__module__}.{policy_base.__name__}).",
            )
        self.binning = binning
        self.bin_size = bin_size
        self.collection = collection
        self.shared_starts = shared_starts
        self.baseline = baseline
        self.advantage_scale = advantage_scale
        self.min_bin_samples = min_bin_samples
        self.bin_fallback = bin_fallback
        self.history_weight = history_weight
        self.signal_rescale = bool(signal_rescale)
        self.objective = objective
        with warnings.catch_warnings():
            if collection != "window":
                # PPO's check quotes n_steps * n_envs, which is not the size of a complete-episode group: the real
                # size is checked after each rollout (_check_group_size).
                warnings.filterwarnings("ignore", message="You have specified a mini-batch size", category=UserWarning)
            super().__init__(
                policy,
                env,
                learning_rate=learning_rate,
                n_steps=n_steps,
                batch_size=batch_size,
                n_epochs=n_epochs,
                gamma=gamma,
                gae_lambda=1.0,
                clip_range=clip_range,
                clip_range_vf=None,
                normalize_advantage=normalize_advantage,
                ent_coef=ent_coef,
                vf_coef=0.0,
                max_grad_norm=max_grad_norm,
                use_sde=use_sde,
                sde_sample_freq=sde_sample_freq,
                rollout_buffer_class=rollout_buffer_class,
                rollout_buffer_kwargs=rollout_buffer_kwargs,
                target_kl=target_kl,
                stats_window_size=stats_window_size,
                tensorboard_log=tensorboard_log,
                policy_kwargs=policy_kwargs,
                verbose=verbose,
                seed=seed,
                device=device,
                _init_setup_model=False,
            )
        self._episode_time: np.ndarray | None = None
        self._episode_step_limit: int | None = None
        self._warned: set[str] = set()  # the warnings already given in this run (each once)
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        # OnPolicyAlgorithm._setup_model, with GPG's buffer (built with the binning and the estimator options)
        # and no critic.
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        if self.rollout_buffer_class is None:
            is_dict = isinstance(self.observation_space, spaces.Dict)
            self.rollout_buffer_class = GroupDictRolloutBuffer if is_dict else GroupRolloutBuffer
        check_shared_starts(self.shared_starts, self.collection, self.n_envs)
        self.rollout_buffer = self.rollout_buffer_class(  # type: ignore[call-arg]
            self.n_steps,
            self.observation_space,
            self.action_space,
            device=self.device,
            gamma=self.gamma,
            n_envs=self.n_envs,
            binning=make_binning(self.binning, self.observation_space, self.bin_size),
            estimator=EstimatorConfig(**{name: getattr(self, name) for name in ESTIMATOR_ARGUMENTS}),
            shared_starts=self.shared_starts,
            **self.rollout_buffer_kwargs,
        )
        # use_sde only when on: the masking policies (discrete actions, no gSDE) take no such argument.
        sde_kwargs = {"use_sde": True} if self.use_sde else {}
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space, self.action_space, self.lr_schedule, **sde_kwargs, **self.policy_kwargs
        )
        self.policy = self.policy.to(self.device)
        self._maybe_recommend_cpu(mlp_class_name=self.policy_aliases["MlpPolicy"].__name__)
        self.clip_range = FloatSchedule(self.clip_range)
        self._warned = set()

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        env_resets = reset_num_timesteps or self._last_obs is None
        result = super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)
        # Episode time counts steps since the env's reset and is carried across rollouts and learn() calls.
        if env_resets or self._episode_time is None or len(self._episode_time) != self.n_envs:
            self._episode_time = np.zeros(self.n_envs, dtype=np.int64)
            self.rollout_buffer.drop_carried()  # the envs were reset: held-back trajectories will not continue
        assert self.env is not None
        self._episode_step_limit = episode_step_limit(self.env)
        return result

    def _update_current_progress_remaining(self, num_timesteps: int, total_timesteps: int) -> None:
        # SB3's progress goes below 0 when the last rollout overshoots the budget (always possible with
        # complete-episode rollouts), and a linear schedule then turns into gradient ascent: clamp it to [0, 1].
        super()._update_current_progress_remaining(num_timesteps, total_timesteps)
        self._current_progress_remaining = min(max(self._current_progress_remaining, 0.0), 1.0)

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: RolloutBuffer,
        n_rollout_steps: int,
    ) -> bool:
        """
        Collect a group with the current policy and compute its advantages.

        Differs from ``OnPolicyAlgorithm.collect_rollouts``: no value forward pass, no bootstrap of time
        limits (there is no critic: a truncated episode's continuation is 0), episode times recorded,
        non-finite observations and rewards refused, the ``"episodes"`` and ``"carry"`` collection modes and the
        rounds of shared starts.

        :param env: The training environment
        :param callback: Callback that will be called at each step (and at the beginning and end of the rollout)
        :param rollout_buffer: Buffer to fill with rollouts
        :param n_rollout_steps: Number of experiences to collect per environment (the minimum, with
            ``collection="episodes"``)
        :return: True if the rollout completed, False if the callback stopped training.
        """
        assert isinstance(rollout_buffer, GroupRolloutBuffer), "GPG needs a GroupRolloutBuffer"
        assert self._last_obs is not None, "No previous observation was provided"
        self.policy.set_training_mode(False)
        rollout_buffer.reset()
        complete_episodes = self.collection == "episodes"
        collecting = np.ones(env.num_envs, dtype=bool)
        start_round = 0
        if complete_episodes:
            self._start_round(env)
        assert self._episode_time is not None
        self._check_finite("observation", self._last_obs, step=0)
        if self.use_sde:
            self.policy.reset_noise(env.num_envs)

        callback.on_rollout_start()
        n_steps = 0
        while collecting.any() if complete_episodes else n_steps < n_rollout_steps:
            if self.use_sde and self.sde_sample_freq > 0 and n_steps % self.sde_sample_freq == 0:
                self.policy.reset_noise(env.num_envs)

            with th.no_grad():
                obs_tensor = obs_as_tensor(self._last_obs, self.device)  # type: ignore[arg-type]
                actions, log_probs, step_data = self._sample_actions(obs_tensor, env)
            actions = actions.cpu().numpy()
            clipped_actions = actions
            if isinstance(self.action_space, spaces.Box):
                if self.policy.squash_output:
                    clipped_actions = self.policy.unscale_action(clipped_actions)
                else:
                    clipped_actions = np.clip(actions, self.action_space.low, self.action_space.high)

            new_obs, rewards, dones, infos = env.step(clipped_actions)
            self.num_timesteps += env.num_envs

            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            self._check_finite("reward", rewards, n_steps)
            self._check_finite("observation", new_obs, n_steps + 1)
            n_steps += 1

            rollout_buffer.add(
                self._last_obs,  # type: ignore[arg-type]
                actions,
                rewards,
                self._last_episode_starts,  # type: ignore[arg-type]
                log_probs,
                self._episode_time,
                valid=collecting if complete_episodes else None,
                start_round=start_round,
                **step_data,
            )
            self._last_obs = new_obs  # type: ignore[assignment]
            self._last_episode_starts = dones
            self._episode_time = np.where(dones, 0, self._episode_time + 1)
            if complete_episodes:
                # An env runs whole episodes until it has taken n_steps; with shared starts, one episode per round.
                collecting &= ~(dones & (n_steps >= n_rollout_steps or self.shared_starts > 1))
                self._check_episodes_end(collecting, n_steps, n_rollout_steps)
                if self.shared_starts > 1 and not collecting.any() and n_steps < n_rollout_steps:
                    start_round += 1
                    collecting[:] = True
                    self._start_round(env)

        if self.collection == "carry":
            guard = self._episode_guard(n_rollout_steps)
            rollout_buffer.carry_unfinished(self._last_episode_starts, max_length=guard)  # type: ignore[arg-type]
        stats = rollout_buffer.compute_returns_and_advantage()
        self._record_group_stats(stats)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _start_round(self, env: VecEnv) -> None:
        """
        Reset every env for a round of complete episodes; with ``shared_starts=K`` the ``K`` envs of a block
        get a common seed, drawn from numpy's generator (which SB3 seeds with ``seed``), then independent ones.
        """
        if self.shared_starts == 1:
            self._last_obs = env.reset()  # type: ignore[assignment]
        else:
            n_blocks = env.num_envs // self.shared_starts
            block_seeds = np.random.randint(0, 2**31 - 1, size=n_blocks)
            self._last_obs = reset_with_seeds(env, np.repeat(block_seeds, self.shared_starts))  # type: ignore[assignment]
            # Only the start is shared: the siblings' noise (LunarLander's engine dispersion, ...) must not be.
            reseed_generators(env, np.random.randint(0, 2**31 - 1, size=env.num_envs))
        self._last_episode_starts = np.ones(env.num_envs, dtype=bool)
        self._episode_time = np.zeros(env.num_envs, dtype=np.int64)

    def _check_finite(self, what: str, values: np.ndarray | dict[str, np.ndarray], step: int) -> None:
        """
        Refuse non-finite rewards and observations where they enter the rollout: a NaN return poisons the
        baseline every step of its bin shares, and a NaN observation the policy's distribution at the update.

        :param what: ``"reward"`` or ``"observation"``.
        :param values: ``(n_envs, ...)`` values, a dict of such arrays for ``Dict`` observations.
        :param step: The rollout step that produced them.
        """
        for key, array in values.items() if isinstance(values, dict) else ((None, values),):
            array = np.asarray(array)
            if array.dtype.kind != "f" or np.isfinite(array).all():
                continue
            env_index = int(np.flatnonzero(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))[0])
            name = what if key is None else f"{what}[{key!r}]"
            value = array[env_index]
            raise ValueError(
                f"Env {env_index} returned {name} {float(value) if value.ndim == 0 else value!r} at rollout step {step} "
                f"(num_timesteps={self.num_timesteps}); GPG does not train on non-finite {what}s. "
                f"Check the environment (or its {what} wrappers)."
            )

    def _episode_guard(self, n_rollout_steps: int) -> int:
        """The most steps complete-episode collection waits for an episode: a rollout plus the env's time limit, or
        without a known limit ``100 * n_steps`` (at least 10,000)."""
        if self._episode_step_limit is not None:
            return n_rollout_steps + self._episode_step_limit
        return max(_EPISODE_GUARD_FACTOR * n_rollout_steps, _MIN_EPISODE_GUARD)

    def _check_episodes_end(self, collecting: np.ndarray, n_steps: int, n_rollout_steps: int) -> None:
        """
        Complete-episode collection waits for every env's episode to end: give up, naming the envs, once an
        episode has outlasted the env's own time limit (an env whose limit does not hold), or without a known
        limit after ``100 * n_steps`` steps (at least 10,000).
        """
        limit = self._episode_step_limit
        guard = self._episode_guard(n_rollout_steps)
        if n_steps <= guard or not collecting.any():
            return
        stuck = np.flatnonzero(collecting).tolist()
        if limit is not None:
            cause = f"though their time limit is {limit} steps (spec.max_episode_steps): the limit does not end them"
        else:
            cause = "and they have no time limit (spec.max_episode_steps) to go by"
        raise RuntimeError(
            f"collection='episodes': envs {stuck} have not ended an episode in {n_steps} steps (n_steps={n_rollout_steps}) "
            f"{cause}. Complete-episode collection needs episodes that end: add a time limit (gymnasium's "
            "max_episode_steps or TimeLimit) or use collection='window'."
        )

    def _sample_actions(self, obs_tensor: th.Tensor | dict[str, th.Tensor], env: VecEnv) -> tuple[th.Tensor, th.Tensor, dict]:
        """
        Sample the rollout's actions (the one step of collection that :class:`~sb3_gpg.MaskableGPG` changes).

        :param obs_tensor: The current observations
        :param env: The training environment
        :return: actions, their log probabilities, and keyword arguments that ``rollout_buffer.add`` stores
            with the step (none here)
        """
        actions, log_probs = self.policy(obs_tensor)
        return actions, log_probs, {}

    def _evaluate_actions(self, rollout_data: Any, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor | None]:
        """
        Log probabilities and entropy of a minibatch's actions under the current policy.

        :param rollout_data: The minibatch (``GroupRolloutBufferSamples``)
        :param actions: Its actions, as the policy's distribution takes them
        :return: log probabilities and entropy (``None`` without an analytical form)
        """
        return self.policy.evaluate_actions(rollout_data.observations, actions)

    def _minibatch_advantages(self, advantages: th.Tensor) -> th.Tensor:
        """
        A minibatch's advantages as the loss uses them: normalized per minibatch if ``normalize_advantage`` (as
        PPO), over the steps that carry signal only with ``signal_rescale``.

        :param advantages: The minibatch's advantages from the buffer
        :return: The advantages the policy loss uses
        """
        if not self.normalize_advantage:
            return advantages
        if self.signal_rescale:
            # The steps without signal have advantage exactly 0 (the estimator sets it) and keep it.
            signal = advantages != 0
            if int(signal.sum()) < 2:  # as PPO, no normalization of a single value
                return advantages
            values = advantages[signal]
            return th.where(signal, (advantages - values.mean()) / (values.std() + 1e-8), 0.0)
        # Normalization does not make sense if mini batchsize == 1, see SB3 GH issue #325
        if len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        return advantages

    def _policy_loss(self, advantages: th.Tensor, ratio: th.Tensor, clip_range: float) -> th.Tensor:
        """
        The policy loss: PPO's clipped surrogate (``objective="clip"``) or the plain importance-weighted policy
        gradient ``-mean(ratio * A)`` (``"pg"``); with ``signal_rescale`` a mean over the steps that carry signal.

        :param advantages: A minibatch's advantages (from :meth:`_minibatch_advantages`)
        :param ratio: ``pi(a|s) / pi_old(a|s)`` of its actions
        :param clip_range: The clipping parameter (``"clip"`` only)
        :return: The loss to minimize
        """
        if self.objective == "pg":
            loss = -(advantages * ratio).mean()
        else:
            policy_loss_1 = advantages * ratio
            policy_loss_2 = advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
            loss = -th.min(policy_loss_1, policy_loss_2).mean()
        if self.signal_rescale:
            # N / (N - N_zero) over the group; a group without any signal has a zero loss whatever the factor.
            assert self.rollout_buffer.group_stats is not None
            no_signal_share = self.rollout_buffer.group_stats.no_signal_share
            loss = loss / (1.0 - no_signal_share) if no_signal_share < 1.0 else loss
        return loss

    def _update_info_buffer(self, infos: list[dict[str, Any]], dones: np.ndarray | None = None) -> None:
        # SB3 reads every env's info on every step; episode statistics and success flags come only with a
        # done, so only the envs that just finished are read (no Python loop over all envs per step).
        if dones is None:
            return super()._update_info_buffer(infos, dones)
        ended = np.flatnonzero(dones)
        if ended.size:
            super()._update_info_buffer([infos[i] for i in ended], np.asarray(dones)[ended])

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, UserWarning, stacklevel=3)

    def _record_group_stats(self, stats: GroupStats) -> None:
        """Log the group's figures under ``group/`` and warn (once per run) when it cannot teach the policy."""
        for name, value in vars(stats).items():
            self.logger.record(f"group/{name}", value)
        if stats.steps and stats.no_signal_share == 1.0:
            self._warn_once("no_signal", self._no_signal_message(stats))
        if self.collection != "window" and stats.steps % self.batch_size:
            # PPO's check at construction assumes n_steps * n_envs steps; a complete-episode group has its own size.
            self._warn_once(
                "minibatch",
                f"You have specified a mini-batch size of {self.batch_size}, but this group of complete episodes holds "
                f"{stats.steps} steps (complete-episode groups vary in size; n_steps={self.n_steps}, "
                f"n_envs={self.n_envs}): after {stats.steps // self.batch_size} untruncated mini-batches there is a "
                f"truncated mini-batch of size {stats.steps % self.batch_size}.",
            )

    def _no_signal_message(self, stats: GroupStats) -> str:
        """Why a group carries no signal, with the remedies that apply to this configuration."""
        binning = self.rollout_buffer.binning.name
        remedies = []
        if stats.single_sample_share == 1.0:
            cause = f"every step sits alone in its bin ({stats.trajectories} trajectories, {stats.bins} bins)"
            remedies.append(f"more envs than n_envs={self.n_envs}")
            if binning in ("space", "space_time"):
                remedies.append(f"coarser cells (a larger bin_size than {self.bin_size!r}) or binning='time'")
            elif binning != "time":
                remedies.append("binning='time'")
            if not self.rollout_buffer.estimator.uses_fallback and binning != "none":
                remedies.append("the sparse-bin fallback (min_bin_samples=4)")
        else:
            cause = (
                f"the returns in every bin are equal ({stats.trajectories} trajectories, {stats.bins} bins; e.g. a "
                "constant reward per step and episodes longer than the rollout)"
            )
            if self.collection == "window":
                remedies.append("collection='carry' or 'episodes' (complete returns, which differ where episodes end)")
                remedies.append(f"a longer rollout than n_steps={self.n_steps}")
            else:
                cause = (
                    f"every episode earned the same return from each time step ({stats.trajectories} trajectories, "
                    f"{stats.bins} bins; e.g. all ran to the time limit on a constant reward: if that is the best "
                    "return, the task is solved)"
                )
            remedies.append(
                "more exploration, so that some episodes end differently: ent_coef, use_sde for continuous actions, "
                "or a count-based bonus for low-dimensional observations (sb3_gpg.exploration.VecCountBonus)"
            )
        return (
            f"No step of this group carries a learning signal ({stats.steps} of {stats.steps} steps, binning={binning!r}): "
            f"{cause}, so every advantage is 0 and the update does nothing. Try {'; or '.join(remedies)}. "
            "group/no_signal_share in the logs shows the share on every rollout."
        )

    def train(self) -> None:
        """
        Update the policy on the collected group: ``PPO.train`` without the critic (no value forward pass,
        no value loss, no explained variance). Loss variants go through :meth:`_minibatch_advantages` and
        :meth:`_policy_loss`, the minibatch's forward pass through :meth:`_evaluate_actions`.
        """
        if self.rollout_buffer.group_stats is not None and self.rollout_buffer.group_stats.steps == 0:
            # collection="carry" when no episode ended in the rollout: every trajectory waits for the next one.
            return
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = self.clip_range(self._current_progress_remaining)  # type: ignore[operator]

        entropy_losses, pg_losses, clip_fractions = [], [], []
        continue_training = True
        for epoch in range(self.n_epochs):
            approx_kl_divs = []
            for rollout_data in self.rollout_buffer.get(self.batch_size):
                actions = rollout_data.actions
                if isinstance(self.action_space, spaces.Discrete):
                    actions = rollout_data.actions.long().flatten()

                log_prob, entropy = self._evaluate_actions(rollout_data, actions)
                advantages = self._minibatch_advantages(rollout_data.advantages)
                ratio = th.exp(log_prob - rollout_data.old_log_prob)
                policy_loss = self._policy_loss(advantages, ratio, clip_range)
                # Approximate entropy when no analytical form
                entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
                loss = policy_loss + self.ent_coef * entropy_loss

                # Logged values stay tensors until the end of the update: one device sync, not one per minibatch.
                with th.no_grad():
                    pg_losses.append(policy_loss.detach())
                    entropy_losses.append(entropy_loss.detach())
                    clip_fractions.append(th.mean((th.abs(ratio - 1) > clip_range).float()))
                    # Schulman's KL approximation, see SB3 issue #417
                    log_ratio = log_prob - rollout_data.old_log_prob
                    approx_kl_div = th.mean((th.exp(log_ratio) - 1) - log_ratio)
                    approx_kl_divs.append(approx_kl_div)

                if self.target_kl is not None and approx_kl_div.item() > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {approx_kl_div.item():.2f}")
                    break

                self.policy.optimizer.zero_grad()
                loss.backward()
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()

            self._n_updates += 1
            if not continue_training:
                break

        def mean(values: list[th.Tensor]) -> float:
            return th.stack(values).mean().item() if values else float("nan")

        # As PPO: entropy, policy loss and clip fraction over all epochs, approx_kl over the last epoch.
        self.logger.record("train/entropy_loss", mean(entropy_losses))
        self.logger.record("train/policy_gradient_loss", mean(pg_losses))
        self.logger.record("train/approx_kl", mean(approx_kl_divs))
        self.logger.record("train/clip_fraction", mean(clip_fractions))
        self.logger.record("train/loss", loss.item())
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)

    def learn(
        self: SelfGPG,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "GPG",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfGPG:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_warned", "_episode_step_limit"]

    @classmethod
    def load(cls: type[SelfGPG], path, env: GymEnv | None = None, device: th.device | str = "auto", **kwargs) -> SelfGPG:  # type: ignore[override]
        """
        Load a GPG model saved with :meth:`save` (see ``BaseAlgorithm.load`` for the arguments).

        A checkpoint of an actor-critic algorithm (PPO, A2C) is refused with a pointer to :meth:`from_ppo`.
        """
        data, _, _ = load_from_zip_file(path, device=device, custom_objects=kwargs.get("custom_objects"), load_data=True)
        policy_class = data.get("policy_class") if data else None
        if isinstance(policy_class, type) and not issubclass(policy_class, cls.policy_aliases["MlpPolicy"]):
            raise ValueError(
                f"{path} holds a {policy_class.__name__} (an actor-critic checkpoint, e.g. PPO), not a GPG model. "
                "Build a GPG model from it with GPG.from_ppo(path, env), which copies the actor and drops the critic."
            )
        return super().load(path, env=env, device=device, **kwargs)

    @classmethod
    def from_ppo(
        cls: type[SelfGPG],
        ppo: PPO | str,
        env: GymEnv | str | None = None,
        device: th.device | str = "auto",
        **kwargs: Any,
    ) -> SelfGPG:
        """
        Warm start GPG from a PPO model: copy the actor (features extractor, policy layers, action net,
        log std) and drop the critic. PPO's hyperparameters that mean the same in GPG are kept.

        :param ppo: A ``PPO`` model or the path of a PPO checkpoint.
        :param env: The environment to train on (default: the PPO model's, if it has one).
        :param device: Device of the new model.
        :param kwargs: GPG constructor arguments that override the ones taken from PPO (``binning``,
            ``bin_size``, ``collection``, ``learning_rate``, ...).
        :return: A GPG model whose policy acts exactly as the PPO model's actor.
        """
        if isinstance(ppo, str):
            ppo = PPO.load(ppo, device=device)
        if not isinstance(ppo, BaseAlgorithm) or not hasattr(ppo.policy, "mlp_extractor"):
            raise ValueError(f"from_ppo needs a PPO model or checkpoint path, got {type(ppo).__name__}.")
        policy_kwargs = dict(ppo.policy_kwargs)
        policy_kwargs.pop("share_features_extractor", None)
        net_arch = policy_kwargs.pop("net_arch", None)
        if isinstance(net_arch, dict):
            net_arch = net_arch.get("pi", [])
        if net_arch is not None:
            policy_kwargs["net_arch"] = net_arch
        hyperparameters = {name: getattr(ppo, name) for name in _PPO_SHARED_HYPERPARAMETERS}
        hyperparameters.update(kwargs)
        hyperparameters["policy_kwargs"] = {**policy_kwargs, **hyperparameters.get("policy_kwargs", {})}
        alias = {
            "ActorCriticPolicy": "MlpPolicy",
            "ActorCriticCnnPolicy": "CnnPolicy",
            "MaskableActorCriticPolicy": "MlpPolicy",
            "MaskableActorCriticCnnPolicy": "CnnPolicy",
        }.get(type(ppo.policy).__name__, "MultiInputPolicy" if isinstance(ppo.observation_space, spaces.Dict) else "MlpPolicy")
        policy_class = cls.policy_aliases[alias]
        model = cls(policy_class, env if env is not None else ppo.get_env(), device=device, **hyperparameters)
        for what, trained, target in (
            ("observation", ppo.observation_space, model.observation_space),
            ("action", ppo.action_space, model.action_space),
        ):
            if type(trained) is not type(target) or trained.shape != target.shape:
                raise ValueError(
                    f"from_ppo: the PPO model was trained with the {what} space {trained}, but the env has {target}: "
                    f"its actor cannot act there. Pass an env with the same {what} space as the PPO model's."
                )

        actor_state = model.policy.state_dict()
        ppo_state = ppo.policy.state_dict()
        missing = [key for key in actor_state if key not in ppo_state]
        if missing:
            raise ValueError(f"The PPO policy has no parameters for {missing}: its actor does not match GPG's policy.")
        model.policy.load_state_dict({key: ppo_state[key] for key in actor_state})
        return model

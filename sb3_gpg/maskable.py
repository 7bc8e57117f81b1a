"""GPG with invalid-action masking: sb3-contrib's MaskablePPO masks on a critic-free policy.

The masks are sb3-contrib's own: an env (or its ``sb3_contrib.common.wrappers.ActionMasker`` wrapper) exposes
``action_masks()``, :func:`~sb3_contrib.common.maskable.utils.get_action_masks` reads them at each rollout step,
the buffer stores them, and the policy's :class:`~sb3_contrib.common.maskable.distributions.MaskableDistribution`
applies them when sampling and again when the update re-evaluates the actions.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    NatureCNN,
)
from stable_baselines3.common.type_aliases import MaybeCallback, PyTorchObs, Schedule
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from sb3_gpg.buffers import GroupRolloutBuffer, MaskableGroupDictRolloutBuffer, MaskableGroupRolloutBuffer
from sb3_gpg.gpg import GPG
from sb3_gpg.policies import CriticFreeMixin

SelfMaskableGPG = TypeVar("SelfMaskableGPG", bound="MaskableGPG")

MASKABLE_ACTION_SPACES = (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


class MaskableCriticFreePolicy(CriticFreeMixin, MaskableActorCriticPolicy):
    """
    Policy of MaskableGPG: sb3-contrib's ``MaskableActorCriticPolicy`` with no value network and no value
    branch. Its parameters are exactly the actor part of MaskablePPO's policy for the same ``net_arch``.

    :param observation_space: Observation space
    :param action_space: Action space (Discrete, MultiDiscrete or MultiBinary: the spaces masking supports)
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: Hidden layer sizes of the actor, ``[64, 64]`` by default (``[]`` with ``NatureCNN``);
        ``dict(pi=[...])`` is accepted too.
    :param activation_fn: Activation function
    :param ortho_init: Whether to use or not orthogonal initialization
    :param features_extractor_class: Features extractor to use.
    :param features_extractor_kwargs: Keyword arguments to pass to the features extractor.
    :param share_features_extractor: Must be True: there is no critic to give its own features extractor.
    :param normalize_images: Whether to normalize images or not, dividing by 255.0 (True by default)
    :param optimizer_class: The optimizer to use, ``th.optim.Adam`` by default
    :param optimizer_kwargs: Additional keyword arguments, excluding the learning rate, to pass to the optimizer
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool = True,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ):
        if not isinstance(action_space, MASKABLE_ACTION_SPACES):
            raise ValueError(
                f"Action masking needs a discrete action space, got {action_space}: valid spaces are "
                f"{', '.join(space.__name__ for space in MASKABLE_ACTION_SPACES)}. Use GPG for continuous actions."
            )
        pi_arch = self._actor_layers(net_arch, features_extractor_class, share_features_extractor)
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=pi_arch,
            activation_fn=activation_fn,
            ortho_init=ortho_init,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            share_features_extractor=True,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )

    def _build(self, lr_schedule: Schedule) -> None:
        # Upstream MaskableActorCriticPolicy._build minus the value head (``value_net``) and its init gain.
        self._build_mlp_extractor()
        self.action_net = self.action_dist.proba_distribution_net(latent_dim=self.mlp_extractor.latent_dim_pi)
        self._init_weights_and_optimizer(lr_schedule)

    def forward(  # type: ignore[override]
        self, obs: th.Tensor, deterministic: bool = False, action_masks: np.ndarray | None = None
    ) -> tuple[th.Tensor, th.Tensor]:
        """
        Sample actions.

        :param obs: Observation
        :param deterministic: Whether to sample or use deterministic actions
        :param action_masks: Action masks to apply to the action distribution
        :return: action and log probability of the action (no value: there is no critic)
        """
        distribution = self.get_distribution(obs, action_masks)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        return actions.reshape((-1, *self.action_space.shape)), log_prob  # type: ignore[misc]

    def evaluate_actions(  # type: ignore[override]
        self, obs: PyTorchObs, actions: th.Tensor, action_masks: th.Tensor | None = None
    ) -> tuple[th.Tensor, th.Tensor | None]:
        """
        Evaluate actions according to the current policy.

        :param obs: Observation
        :param actions: Actions
        :param action_masks: Action masks to apply to the action distribution
        :return: log likelihood of the actions and entropy of the action distribution (no value)
        """
        distribution = self.get_distribution(obs, action_masks)
        return distribution.log_prob(actions), distribution.entropy()


class MaskableCriticFreeCnnPolicy(MaskableCriticFreePolicy):
    """:class:`MaskableCriticFreePolicy` with SB3's ``NatureCNN`` features extractor, for image observations.

    Arguments as :class:`MaskableCriticFreePolicy`.
    """

    def __init__(self, *args, features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN, **kwargs):
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class MaskableCriticFreeMultiInputPolicy(MaskableCriticFreePolicy):
    """:class:`MaskableCriticFreePolicy` with SB3's ``CombinedExtractor``, for ``Dict`` observations.

    Arguments as :class:`MaskableCriticFreePolicy`.
    """

    def __init__(self, *args, features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor, **kwargs):
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


MlpPolicy = MaskableCriticFreePolicy
CnnPolicy = MaskableCriticFreeCnnPolicy
MultiInputPolicy = MaskableCriticFreeMultiInputPolicy


class MaskableGPG(GPG):
    """
    Group Policy Gradient with invalid-action masking (sb3-contrib's MaskablePPO, with GPG's group baseline).

    Invalid actions are masked out of the action distribution when the rollout samples them, and again when
    the update evaluates their log probabilities and entropy, so they are never taken and get no probability
    mass. The env gives the masks through an ``action_masks()`` method, directly or with sb3-contrib's
    ``ActionMasker`` wrapper, exactly as for MaskablePPO. Action spaces: Discrete, MultiDiscrete and
    MultiBinary.

    Arguments are :class:`~sb3_gpg.GPG`'s (``use_sde`` does not apply: masking needs discrete actions); the
    policies are :class:`MaskableCriticFreePolicy` and its CNN and multi-input variants, and the rollout
    buffer :class:`~sb3_gpg.buffers.MaskableGroupRolloutBuffer` (or its ``Dict`` variant). Use
    ``learn(..., use_masking=False)`` to train without masks, and ``predict(obs, action_masks=...)`` to act
    under masks.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    policy: MaskableCriticFreePolicy  # type: ignore[assignment]
    rollout_buffer: MaskableGroupRolloutBuffer  # type: ignore[assignment]
    _use_masking: bool = True  # the use_masking of the current learn() call

    def _setup_model(self) -> None:
        if self.rollout_buffer_class is None:
            is_dict = isinstance(self.observation_space, spaces.Dict)
            self.rollout_buffer_class = MaskableGroupDictRolloutBuffer if is_dict else MaskableGroupRolloutBuffer
        elif issubclass(self.rollout_buffer_class, GroupRolloutBuffer) and not issubclass(
            self.rollout_buffer_class, MaskableGroupRolloutBuffer
        ):
            raise ValueError(
                f"rollout_buffer_class={self.rollout_buffer_class.__name__} does not store action masks: use "
                "sb3_gpg.buffers.MaskableGroupRolloutBuffer, MaskableGroupDictRolloutBuffer or a subclass."
            )
        super()._setup_model()

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_use_masking"]

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: RolloutBuffer,
        n_rollout_steps: int,
        use_masking: bool | None = None,
    ) -> bool:
        """
        :meth:`GPG.collect_rollouts <sb3_gpg.GPG.collect_rollouts>` with the actions sampled under the env's
        action masks, which the buffer stores with each step.

        :param env: The training environment
        :param callback: Callback that will be called at each step (and at the beginning and end of the rollout)
        :param rollout_buffer: Buffer to fill with rollouts
        :param n_rollout_steps: Number of experiences to collect per environment
        :param use_masking: Whether to use the action masks (default: the ``use_masking`` of :meth:`learn`)
        :return: True if the rollout completed, False if the callback stopped training.
        """
        if use_masking is not None:
            self._use_masking = use_masking
        if self._use_masking and not is_masking_supported(env):
            raise ValueError(
                "The environment does not support action masking: it needs an action_masks() method. "
                "Wrap it in sb3_contrib.common.wrappers.ActionMasker, or call learn(..., use_masking=False)."
            )
        return super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)

    def _sample_actions(self, obs_tensor: th.Tensor | dict[str, th.Tensor], env: VecEnv) -> tuple[th.Tensor, th.Tensor, dict]:
        action_masks = get_action_masks(env) if self._use_masking else None
        actions, log_probs = self.policy(obs_tensor, action_masks=action_masks)
        return actions, log_probs, dict(action_masks=action_masks)

    def _evaluate_actions(self, rollout_data: Any, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor | None]:
        # Steps collected without masking stored all-valid masks, which change nothing.
        return self.policy.evaluate_actions(rollout_data.observations, actions, action_masks=rollout_data.action_masks)

    def predict(  # type: ignore[override]
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """
        Get the policy action from an observation, as MaskablePPO.

        :param observation: the input observation
        :param state: The last hidden states (unused: the policy is not recurrent)
        :param episode_start: The episode starts (unused)
        :param deterministic: Whether or not to return deterministic actions.
        :param action_masks: Action masks to apply to the action distribution
        :return: the model's action and the next hidden state (``None``)
        """
        return self.policy.predict(observation, state, episode_start, deterministic, action_masks=action_masks)

    def learn(  # type: ignore[override]
        self: SelfMaskableGPG,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "MaskableGPG",
        reset_num_timesteps: bool = True,
        use_masking: bool = True,
        progress_bar: bool = False,
    ) -> SelfMaskableGPG:
        """
        Train the model (``BaseAlgorithm.learn``'s arguments, as MaskablePPO).

        :param use_masking: Whether to sample actions under the env's action masks
        """
        self._use_masking = use_masking
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

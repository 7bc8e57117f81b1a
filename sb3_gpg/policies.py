"""Critic-free policies: SB3's actor-critic policies with the critic removed, not merely unused."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import (
    BernoulliDistribution,
    CategoricalDistribution,
    DiagGaussianDistribution,
    MultiCategoricalDistribution,
    StateDependentNoiseDistribution,
)
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    MlpExtractor,
    NatureCNN,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_gpg.arguments import ArgumentError

NO_CRITIC = "GPG has no value function (its baseline is the group's mean return)"


def actor_net_arch(net_arch: list[int] | dict[str, list[int]] | None) -> list[int] | None:
    """
    The actor layers of a PPO-style ``net_arch``.

    :param net_arch: ``[64, 64]``, ``dict(pi=[64, 64])`` or ``None`` (SB3's default for the features
        extractor); a ``vf`` entry is refused since there is no value network to build.
    :return: The actor's hidden layer sizes, or ``None`` for the default.
    """
    if isinstance(net_arch, dict):
        if net_arch.get("vf"):
            raise ArgumentError(
                "policy_kwargs",
                f"net_arch={net_arch!r} describes a value network, but {NO_CRITIC}: "
                f"pass the actor's layers only, net_arch={net_arch.get('pi', [])!r}.",
            )
        unknown = set(net_arch) - {"pi", "vf"}
        if unknown:
            raise ArgumentError(
                "policy_kwargs", f"net_arch={net_arch!r} has unknown keys {sorted(unknown)}: valid keys are 'pi'."
            )
        layers = net_arch.get("pi", [])
    else:
        layers = net_arch
    if layers is None:
        return None
    if not isinstance(layers, (list, tuple)) or not all(
        isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size > 0 for size in layers
    ):
        raise ArgumentError(
            "policy_kwargs", f"net_arch={net_arch!r} must list the actor's layer sizes, e.g. [64, 64] or dict(pi=[64, 64])."
        )
    return list(layers)


class CriticFreeMixin:
    """
    What makes an SB3 actor-critic policy class critic-free; mixed in before it (``CriticFreePolicy`` and
    sb3-contrib's maskable variant share it). The subclass's ``_build`` creates its action head, then calls
    :meth:`_init_weights_and_optimizer`.
    """

    @staticmethod
    def _actor_layers(
        net_arch: list[int] | dict[str, list[int]] | None,
        features_extractor_class: type[BaseFeaturesExtractor],
        share_features_extractor: bool,
    ) -> list[int]:
        """Validate the PPO-style arguments and return the actor's layers (SB3's defaults when unset)."""
        if not share_features_extractor:
            raise ArgumentError(
                "policy_kwargs", f"share_features_extractor=False would build a critic's features extractor, but {NO_CRITIC}."
            )
        pi_arch = actor_net_arch(net_arch)
        if pi_arch is None:
            pi_arch = [] if features_extractor_class == NatureCNN else [64, 64]
        return pi_arch

    def _build_mlp_extractor(self) -> None:
        # An empty critic branch holds no parameters; only the actor's layers are built.
        self.mlp_extractor = MlpExtractor(
            self.features_dim,  # type: ignore[attr-defined]
            net_arch=dict(pi=self.net_arch, vf=[]),  # type: ignore[attr-defined]
            activation_fn=self.activation_fn,  # type: ignore[attr-defined]
            device=self.device,  # type: ignore[attr-defined]
        )

    def _init_weights_and_optimizer(self, lr_schedule: Schedule) -> None:
        # Upstream's gains without the value head's.
        if self.ortho_init:  # type: ignore[attr-defined]
            module_gains = {self.features_extractor: np.sqrt(2), self.mlp_extractor: np.sqrt(2), self.action_net: 0.01}  # type: ignore[attr-defined]
            for module, gain in module_gains.items():
                module.apply(partial(self.init_weights, gain=gain))  # type: ignore[attr-defined]
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[attr-defined]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data.pop("share_features_extractor", None)
        return data

    def predict_values(self, obs: PyTorchObs) -> th.Tensor:
        raise NotImplementedError(f"predict_values() is not available: {NO_CRITIC}.")


class CriticFreePolicy(CriticFreeMixin, ActorCriticPolicy):
    """
    Policy of GPG: features extractor, actor network and action distribution, with no value network and
    no value branch. Its parameters are exactly the actor part of SB3's ``ActorCriticPolicy`` for the same
    ``net_arch``, so a PPO actor can be copied in (see :meth:`sb3_gpg.GPG.from_ppo`).

    :param observation_space: Observation space
    :param action_space: Action space
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: Hidden layer sizes of the actor, ``[64, 64]`` by default (``[]`` with ``NatureCNN``);
        ``dict(pi=[...])`` is accepted too.
    :param activation_fn: Activation function
    :param ortho_init: Whether to use or not orthogonal initialization
    :param use_sde: Whether to use State Dependent Exploration or not
    :param log_std_init: Initial value for the log standard deviation
    :param full_std: Whether to use (n_features x n_actions) parameters
        for the std instead of only (n_features,) when using gSDE
    :param use_expln: Use ``expln()`` function instead of ``exp()`` to ensure
        a positive standard deviation (cf paper). It allows to keep variance
        above zero and prevent it from growing too fast. In practice, ``exp()`` is usually enough.
    :param squash_output: Whether to squash the output using a tanh function,
        this allows to ensure boundaries when using gSDE.
    :param features_extractor_class: Features extractor to use.
    :param features_extractor_kwargs: Keyword arguments to pass to the features extractor.
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
        use_sde: bool = False,
        log_std_init: float = 0.0,
        full_std: bool = True,
        use_expln: bool = False,
        squash_output: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool = True,
    ):
        pi_arch = self._actor_layers(net_arch, features_extractor_class, share_features_extractor)
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=pi_arch,
            activation_fn=activation_fn,
            ortho_init=ortho_init,
            use_sde=use_sde,
            log_std_init=log_std_init,
            full_std=full_std,
            use_expln=use_expln,
            squash_output=squash_output,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            share_features_extractor=True,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )

    def _build(self, lr_schedule: Schedule) -> None:
        # Upstream ActorCriticPolicy._build minus the value head (``value_net``).
        self._build_mlp_extractor()
        latent_dim_pi = self.mlp_extractor.latent_dim_pi
        if isinstance(self.action_dist, DiagGaussianDistribution):
            self.action_net, self.log_std = self.action_dist.proba_distribution_net(
                latent_dim=latent_dim_pi, log_std_init=self.log_std_init
            )
        elif isinstance(self.action_dist, StateDependentNoiseDistribution):
            self.action_net, self.log_std = self.action_dist.proba_distribution_net(
                latent_dim=latent_dim_pi, latent_sde_dim=latent_dim_pi, log_std_init=self.log_std_init
            )
        elif isinstance(self.action_dist, (CategoricalDistribution, MultiCategoricalDistribution, BernoulliDistribution)):
            self.action_net = self.action_dist.proba_distribution_net(latent_dim=latent_dim_pi)
        else:
            raise NotImplementedError(f"Unsupported distribution '{self.action_dist}'.")

        self._init_weights_and_optimizer(lr_schedule)

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor]:  # type: ignore[override]
        """
        Sample actions (the rollout's forward pass).

        :param obs: Observation
        :param deterministic: Whether to sample or use deterministic actions
        :return: action and log probability of the action (no value: there is no critic)
        """
        if isinstance(self.action_dist, CategoricalDistribution):
            return self._sample_categorical(obs, deterministic)
        distribution = self.get_distribution(obs)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        return actions.reshape((-1, *self.action_space.shape)), log_prob  # type: ignore[misc]

    def _sample_categorical(self, obs: PyTorchObs, deterministic: bool) -> tuple[th.Tensor, th.Tensor]:
        """
        Discrete actions without building a ``torch.distributions.Categorical``, whose construction and
        validation cost several times the network itself on small batches (the rollout calls this once per
        step). Sampling is exact: the argmax of log-probabilities plus Gumbel noise is a draw from the softmax.
        """
        features = super().extract_features(obs, self.pi_features_extractor)
        log_probs = th.log_softmax(self.action_net(self.mlp_extractor.forward_actor(features)), dim=-1)
        if deterministic:
            actions = log_probs.argmax(dim=-1, keepdim=True)
        else:
            gumbel = -th.empty_like(log_probs).exponential_().log()
            actions = (log_probs + gumbel).argmax(dim=-1, keepdim=True)
        return actions.squeeze(-1), log_probs.gather(-1, actions).squeeze(-1)

    def evaluate_actions(self, obs: PyTorchObs, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor | None]:  # type: ignore[override]
        """
        Evaluate actions according to the current policy.

        :param obs: Observation
        :param actions: Actions
        :return: log likelihood of the actions and entropy of the action distribution (no value)
        """
        distribution = self.get_distribution(obs)
        return distribution.log_prob(actions), distribution.entropy()


class CriticFreeCnnPolicy(CriticFreePolicy):
    """:class:`CriticFreePolicy` with SB3's ``NatureCNN`` features extractor, for image observations.

    Arguments as :class:`CriticFreePolicy`.
    """

    def __init__(self, *args, features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN, **kwargs):
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class CriticFreeMultiInputPolicy(CriticFreePolicy):
    """:class:`CriticFreePolicy` with SB3's ``CombinedExtractor``, for ``Dict`` observations.

    Arguments as :class:`CriticFreePolicy`.
    """

    def __init__(self, *args, features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor, **kwargs):
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


MlpPolicy = CriticFreePolicy
CnnPolicy = CriticFreeCnnPolicy
MultiInputPolicy = CriticFreeMultiInputPolicy

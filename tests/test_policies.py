"""Critic-free policies on every SB3 action and observation space."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.envs import (
    FakeImageEnv,
    IdentityEnv,
    IdentityEnvBox,
    IdentityEnvMultiBinary,
    IdentityEnvMultiDiscrete,
    SimpleMultiObsEnv,
)

from sb3_gpg import GPG
from sb3_gpg.policies import CriticFreeCnnPolicy, CriticFreeMultiInputPolicy, CriticFreePolicy


def n_params(module: th.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def ppo_actor_params(ppo: PPO) -> int:
    policy = ppo.policy
    critic = n_params(policy.mlp_extractor.value_net) + n_params(policy.value_net)
    if not policy.share_features_extractor:
        critic += n_params(policy.vf_features_extractor)
    return n_params(policy) - critic


ENVS = {
    "discrete": lambda: IdentityEnv(4),
    "box": lambda: IdentityEnvBox(eps=0.5),
    "multibinary": lambda: IdentityEnvMultiBinary(3),
    "multidiscrete": lambda: IdentityEnvMultiDiscrete(3),
    "discrete_obs": lambda: gym.make("FrozenLake-v1"),
    "dict_obs": lambda: SimpleMultiObsEnv(random_start=True),
    "image": lambda: FakeImageEnv(screen_height=36, screen_width=36, n_channels=1),
}
POLICY_FOR = {"dict_obs": "MultiInputPolicy", "image": "CnnPolicy"}


@pytest.mark.parametrize("env_name", list(ENVS))
def test_parameters_are_exactly_ppos_actor(env_name):
    policy = POLICY_FOR.get(env_name, "MlpPolicy")
    kwargs = dict(n_steps=16, batch_size=16, policy_kwargs=dict(net_arch=[32, 16]))
    if env_name == "image":
        kwargs["policy_kwargs"] = dict(net_arch=[], features_extractor_kwargs=dict(features_dim=32))
    gpg = GPG(policy, ENVS[env_name](), **kwargs)
    ppo = PPO(policy, ENVS[env_name](), **kwargs)
    assert n_params(gpg.policy) == ppo_actor_params(ppo)
    names = [name for name, _ in gpg.policy.named_parameters()]
    assert not any("value" in name or "vf_" in name for name in names), names


@pytest.mark.parametrize("env_name", list(ENVS))
def test_learns_predicts_and_evaluates_on_every_space(env_name):
    env = ENVS[env_name]()
    model = GPG(POLICY_FOR.get(env_name, "MlpPolicy"), env, n_steps=32, batch_size=16, n_epochs=2, seed=0)
    model.learn(64)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(np.asarray(action, dtype=env.action_space.dtype).reshape(env.action_space.shape))
    obs_tensor, _ = model.policy.obs_to_tensor(obs)
    actions, log_prob = model.policy(obs_tensor)
    evaluated_log_prob, entropy = model.policy.evaluate_actions(obs_tensor, actions)
    th.testing.assert_close(evaluated_log_prob, log_prob)
    assert entropy is not None and entropy.shape == log_prob.shape


def test_gsde_noise_is_fixed_between_resamples():
    model = GPG("MlpPolicy", "Pendulum-v1", use_sde=True, sde_sample_freq=4, n_steps=32, batch_size=32, seed=0)
    model.learn(64)
    obs = th.tensor([[0.5, -0.8, 1.0]])

    def sample() -> float:
        with th.no_grad():
            return model.policy.get_distribution(obs).get_actions().item()

    first = sample()
    assert sample() == first  # gSDE: the same noise matrix gives the same action for the same state
    model.policy.reset_noise()
    assert sample() != first


def test_policy_aliases_and_no_value_function():
    assert GPG.policy_aliases == {
        "MlpPolicy": CriticFreePolicy,
        "CnnPolicy": CriticFreeCnnPolicy,
        "MultiInputPolicy": CriticFreeMultiInputPolicy,
    }
    model = GPG("MlpPolicy", "CartPole-v1", n_steps=16, batch_size=16)
    with pytest.raises(NotImplementedError, match="no value function"):
        model.policy.predict_values(th.zeros(1, 4))


@pytest.mark.parametrize(
    "policy_kwargs,match",
    [
        (dict(net_arch=dict(pi=[64], vf=[64])), "describes a value network"),
        (dict(share_features_extractor=False), "no value function"),
    ],
)
def test_critic_policy_arguments_are_refused(policy_kwargs, match):
    with pytest.raises(ValueError, match=match):
        GPG("MlpPolicy", "CartPole-v1", policy_kwargs=policy_kwargs)


def test_rollout_sampling_of_discrete_actions_follows_the_policy():
    """The fast categorical sampler draws from softmax(logits) and reports its log-probabilities."""
    th.manual_seed(0)
    model = GPG("MlpPolicy", IdentityEnv(3), n_steps=16, batch_size=16, policy_kwargs=dict(ortho_init=False))
    obs = th.zeros(20_000, dtype=th.long)  # Discrete(3) observation 0, one-hot encoded by the policy
    with th.no_grad():
        actions, log_prob = model.policy(obs)
        probs = model.policy.get_distribution(obs[:1]).distribution.probs[0]
        deterministic, _ = model.policy(obs[:1], deterministic=True)
    frequencies = th.bincount(actions, minlength=3).float() / len(actions)
    # 20k draws: the standard error of each frequency is below 0.0036; 0.02 is over five of them.
    th.testing.assert_close(frequencies, probs, atol=0.02, rtol=0)
    th.testing.assert_close(log_prob, th.log(probs)[actions])
    assert deterministic.item() == probs.argmax().item()

"""Bad input gets a clear error that names the bad value and the valid ones; nothing is silently wrong."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.env_util import make_vec_env

from sb3_gpg import GPG


@pytest.mark.parametrize("argument,value", [("gae_lambda", 0.95), ("vf_coef", 0.5), ("clip_range_vf", 0.2)])
def test_critic_arguments_fail(argument, value):
    with pytest.raises(ValueError, match=rf"{argument} configure a critic, but GPG has no value function"):
        GPG("MlpPolicy", "CartPole-v1", **{argument: value})


def test_unknown_argument_is_a_type_error():
    with pytest.raises(TypeError, match="binsize"):
        GPG("MlpPolicy", "CartPole-v1", binsize=0.5)


def test_unknown_binning_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"Unknown binning 'spacetime': valid binnings are time, none, space, space_time, state"
    ):
        GPG("MlpPolicy", "CartPole-v1", binning="spacetime")


@pytest.mark.parametrize(
    "bin_size,match",
    [(0.0, "must be positive"), (-1.0, "must be positive"), ([0.5, 0.5], "has 2 values but .* has 4 dimensions")],
)
def test_bad_bin_size(bin_size, match):
    with pytest.raises(ValueError, match=match):
        GPG("MlpPolicy", "CartPole-v1", binning="space", bin_size=bin_size)


@pytest.mark.parametrize("binning", ["space", "space_time"])
def test_spatial_binning_needs_box_observations(binning):
    with pytest.raises(ValueError, match=r"needs a continuous Box observation space, got Discrete\(48\)"):
        GPG("MlpPolicy", "CliffWalking-v1", binning=binning)


def test_state_binning_needs_discrete_observations():
    with pytest.raises(ValueError, match=r"binning='state' .* needs a discrete observation space .* got Box"):
        GPG("MlpPolicy", "CartPole-v1", binning="state")


def test_unknown_collection_mode():
    with pytest.raises(ValueError, match=r"Unknown collection='episode': valid modes are window, episodes"):
        GPG("MlpPolicy", "CartPole-v1", collection="episode")


def test_non_group_rollout_buffer_is_refused():
    with pytest.raises(ValueError, match="RolloutBuffer cannot compute group baselines"):
        GPG("MlpPolicy", "CartPole-v1", rollout_buffer_class=RolloutBuffer)


def test_actor_critic_policy_class_is_refused():
    from stable_baselines3.common.policies import ActorCriticPolicy

    with pytest.raises(ValueError, match="ActorCriticPolicy is not critic-free"):
        GPG(ActorCriticPolicy, "CartPole-v1")


def test_callable_binning_with_wrong_shape():
    model = GPG("MlpPolicy", "CartPole-v1", n_steps=8, batch_size=8, binning=lambda obs, t: t[:3])
    with pytest.raises(ValueError, match=r"returned bin keys of shape \(3,\) for 8 steps"):
        model.learn(8)


class NanRewardEnv(gym.Wrapper):
    def __init__(self, env, bad_step):
        super().__init__(env)
        self.bad_step, self.steps = bad_step, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        return obs, (np.nan if self.steps == self.bad_step else reward), terminated, truncated, info


def test_nan_reward_names_env_and_step_and_is_not_trained_on():
    env = make_vec_env("Pendulum-v1", n_envs=3, seed=0)
    env.envs[2] = NanRewardEnv(env.envs[2], bad_step=5)
    model = GPG("MlpPolicy", env, n_steps=16, batch_size=48, seed=0)
    before = [p.detach().clone() for p in model.policy.parameters()]
    with pytest.raises(ValueError, match=r"Env 2 returned reward nan at rollout step 4 \(num_timesteps=15\)"):
        model.learn(48)
    for old, new in zip(before, model.policy.parameters(), strict=True):
        assert np.array_equal(old.numpy(), new.detach().numpy()), "trained on a rollout with a NaN reward"


def test_group_with_every_step_alone_warns_once():
    # One env, one long episode, time binning: each time bin holds one sample, every advantage is zero.
    model = GPG("MlpPolicy", "Pendulum-v1", n_steps=32, batch_size=32, seed=0)
    with pytest.warns(UserWarning, match="Every step of this group sits alone in its bin") as record:
        model.learn(96)
    assert sum("sits alone" in str(w.message) for w in record) == 1
    assert np.all(model.rollout_buffer.advantages == 0)

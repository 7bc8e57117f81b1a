"""MaskableGPG: sb3-contrib's invalid-action masking on GPG."""

import gymnasium as gym
import numpy as np
import pytest
from sb3_contrib import MaskablePPO
from sb3_contrib.common.envs import InvalidActionEnvDiscrete, InvalidActionEnvMultiDiscrete
from sb3_contrib.common.maskable.evaluation import evaluate_policy
from sb3_contrib.common.wrappers import ActionMasker
from stable_baselines3.common.env_util import make_vec_env

from sb3_gpg import MaskableGPG
from sb3_gpg.buffers import GroupRolloutBuffer, MaskableGroupRolloutBuffer
from sb3_gpg.maskable import MaskableCriticFreePolicy


def invalid_action_env(n_envs=4, seed=0, dim=20, n_invalid_actions=15, ep_length=50):
    return make_vec_env(
        InvalidActionEnvDiscrete,
        n_envs=n_envs,
        seed=seed,
        env_kwargs=dict(dim=dim, n_invalid_actions=n_invalid_actions, ep_length=ep_length),
    )


@pytest.mark.parametrize("net_arch", [None, [32], dict(pi=[16, 8])])
def test_policy_is_maskable_ppos_actor(net_arch):
    env = invalid_action_env(n_envs=1)
    policy_kwargs = {} if net_arch is None else dict(net_arch=net_arch)
    gpg = MaskableGPG("MlpPolicy", env, policy_kwargs=policy_kwargs)
    ppo = MaskablePPO("MlpPolicy", env, policy_kwargs=policy_kwargs)
    actor = {name: p.shape for name, p in ppo.policy.named_parameters() if "value" not in name}
    assert {name: p.shape for name, p in gpg.policy.named_parameters()} == actor
    assert isinstance(gpg.policy, MaskableCriticFreePolicy) and not hasattr(gpg.policy, "value_net")
    with pytest.raises(NotImplementedError, match="GPG has no value function"):
        gpg.policy.predict_values(gpg.policy.obs_to_tensor(env.observation_space.sample())[0])


def test_collection_never_takes_an_invalid_action():
    """Complete-episode collection (the buffer grows past n_steps, masks included) with 18 of 20 actions
    invalid at every step: every stored action is valid under the mask stored with it."""
    model = MaskableGPG(
        "MlpPolicy", invalid_action_env(n_invalid_actions=18), n_steps=16, batch_size=64, collection="episodes", seed=0
    )
    model.learn(200)
    buffer = model.rollout_buffer
    rows = buffer.pos
    assert rows >= 50 and buffer.buffer_size > 16  # grown for whole 50-step episodes
    masks = buffer.action_masks[:rows]
    assert np.all(masks.sum(axis=-1) == 2)  # the env's masks were stored, not the all-valid default
    taken = np.take_along_axis(masks, buffer.actions[:rows].astype(np.int64), axis=-1)
    assert np.all(taken[buffer.valid[:rows]] == 1)


def test_carried_steps_keep_their_masks():
    """collection="carry": the 50-step episodes outlast the 16-step window, so their steps are held back over several
    rollouts; every action of the group is still valid under the mask it was sampled with."""
    model = MaskableGPG(
        "MlpPolicy", invalid_action_env(n_invalid_actions=18), n_steps=16, batch_size=64, collection="carry", seed=0
    )
    model.learn(4 * 16 * 4)  # four rollouts of 4 envs x 16 steps
    buffer = model.rollout_buffer
    rows = buffer.pos
    assert rows == 64 and buffer.valid[:rows].sum() == 4 * 50  # each env's whole episode, carried through three rollouts
    masks = buffer.action_masks[:rows]
    assert np.all(masks.sum(axis=-1) == 2)
    taken = np.take_along_axis(masks, buffer.actions[:rows].astype(np.int64), axis=-1)
    assert np.all(taken[buffer.valid[:rows]] == 1)


def test_masks_reach_the_update():
    """The update evaluates the stored actions under the stored masks: the logged entropy is that of a
    distribution over the 2 valid actions (at most log 2), not over all 20."""
    model = MaskableGPG("MlpPolicy", invalid_action_env(n_invalid_actions=18), n_steps=16, batch_size=64, seed=0)
    model.learn(64)
    model.train()
    assert -model.logger.name_to_value["train/entropy_loss"] <= np.log(2) + 1e-6


def test_learns_the_invalid_action_env():
    """Identity task, 15 of 20 actions invalid at each step, 50-step episodes: a uniform policy over the
    valid actions scores 10, the best 50. Rewards depend on the current action only, hence gamma=0. On seeds
    0-7 every run scored 50 after 2,000 steps; the test trains 3,000 and asks for 45."""
    model = MaskableGPG(
        "MlpPolicy", invalid_action_env(n_envs=8), n_steps=50, batch_size=100, gamma=0.0, learning_rate=3e-3, seed=0
    )
    model.learn(3_000)
    mean_reward, _ = evaluate_policy(model, invalid_action_env(n_envs=1, seed=100), n_eval_episodes=10, warn=False)
    assert mean_reward >= 45


def test_save_load_gives_the_same_masked_actions(tmp_path):
    env = invalid_action_env(n_invalid_actions=10)
    model = MaskableGPG("MlpPolicy", env, n_steps=16, batch_size=64, baseline="leave_one_out", seed=0)
    model.learn(128)
    model.save(tmp_path / "maskable_gpg")
    loaded = MaskableGPG.load(tmp_path / "maskable_gpg", env=env)
    assert isinstance(loaded.policy, MaskableCriticFreePolicy) and loaded.baseline == "leave_one_out"
    assert isinstance(loaded.rollout_buffer, MaskableGroupRolloutBuffer)

    rng = np.random.default_rng(0)
    observations = rng.integers(0, 20, size=50)
    masks = rng.random((50, 20)) < 0.3
    masks[np.arange(50), rng.integers(0, 20, size=50)] = True  # at least one valid action per row
    actions, _ = model.predict(observations, deterministic=True, action_masks=masks)
    loaded_actions, _ = loaded.predict(observations, deterministic=True, action_masks=masks)
    np.testing.assert_array_equal(actions, loaded_actions)
    assert np.all(masks[np.arange(50), actions])
    loaded.learn(64, reset_num_timesteps=False)


def test_action_masker_wrapper_and_multidiscrete():
    def only_action_zero(env):
        return np.array([True, False])

    env = make_vec_env(
        "CartPole-v1", n_envs=2, seed=0, wrapper_class=ActionMasker, wrapper_kwargs=dict(action_mask_fn=only_action_zero)
    )
    model = MaskableGPG("MlpPolicy", env, n_steps=16, batch_size=32, seed=0)
    model.learn(32)
    assert np.all(model.rollout_buffer.actions[: model.rollout_buffer.pos] == 0)

    multi = make_vec_env(InvalidActionEnvMultiDiscrete, n_envs=2, seed=0, env_kwargs=dict(dims=[3, 4], n_invalid_actions=3))
    model = MaskableGPG("MlpPolicy", multi, n_steps=16, batch_size=32, seed=0)
    model.learn(32)
    buffer = model.rollout_buffer
    masks, actions = buffer.action_masks[: buffer.pos], buffer.actions[: buffer.pos].astype(np.int64)
    assert np.all(np.take_along_axis(masks[..., :3], actions[..., :1], axis=-1) == 1)
    assert np.all(np.take_along_axis(masks[..., 3:], actions[..., 1:], axis=-1) == 1)


def test_masking_needs_an_env_that_supports_it():
    model = MaskableGPG("MlpPolicy", "CartPole-v1", n_steps=16, batch_size=16, seed=0)
    with pytest.raises(ValueError, match=r"does not support action masking: it needs an action_masks\(\) method"):
        model.learn(16)
    model.learn(16, use_masking=False)
    assert np.all(model.rollout_buffer.action_masks[: model.rollout_buffer.pos] == 1)


def test_bad_spaces_and_buffers_are_refused():
    with pytest.raises(ValueError, match=r"Action masking .*action space Box.*valid spaces are Discrete"):
        MaskableGPG("MlpPolicy", "Pendulum-v1")
    with pytest.raises(ValueError, match="GroupRolloutBuffer does not store action masks"):
        MaskableGPG("MlpPolicy", invalid_action_env(n_envs=1), rollout_buffer_class=GroupRolloutBuffer)


def test_warm_start_from_maskable_ppo():
    env = invalid_action_env(n_envs=1)
    ppo = MaskablePPO("MlpPolicy", env, seed=0)
    model = MaskableGPG.from_ppo(ppo)
    observations = np.arange(20)
    masks = np.random.default_rng(1).random((20, 20)) < 0.5
    masks[:, 0] = True
    np.testing.assert_array_equal(
        model.predict(observations, deterministic=True, action_masks=masks)[0],
        ppo.predict(observations, deterministic=True, action_masks=masks)[0],
    )


def test_gym_env_id_and_single_env_predict():
    env = gym.make("CartPole-v1")
    model = MaskableGPG("MlpPolicy", ActionMasker(env, lambda e: np.array([False, True])), n_steps=8, batch_size=8)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, action_masks=np.array([False, True]))
    assert action == 1


class DictObservation(gym.ObservationWrapper):
    """InvalidActionEnvDiscrete with a Dict observation (MultiInputPolicy, the Dict group buffer)."""

    def __init__(self, env):
        super().__init__(env)
        self.observation_space = gym.spaces.Dict(state=env.observation_space, extra=gym.spaces.Box(-1, 1, (2,)))

    def observation(self, observation):
        return dict(state=observation, extra=np.zeros(2, dtype=np.float32))


def test_dict_observations_grow_and_mask():
    env = make_vec_env(
        lambda: DictObservation(InvalidActionEnvDiscrete(dim=10, n_invalid_actions=8, ep_length=20)), n_envs=3, seed=0
    )
    model = MaskableGPG("MultiInputPolicy", env, n_steps=8, batch_size=12, collection="episodes", seed=0)
    model.learn(100)
    buffer = model.rollout_buffer
    assert type(buffer).__name__ == "MaskableGroupDictRolloutBuffer" and buffer.buffer_size > 8
    taken = np.take_along_axis(buffer.action_masks[: buffer.pos], buffer.actions[: buffer.pos].astype(np.int64), axis=-1)
    assert np.all(taken[buffer.valid[: buffer.pos]] == 1)

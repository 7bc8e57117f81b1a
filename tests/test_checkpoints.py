"""Save/load, the SB3 training workflow, and warm starts from PPO."""

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from sb3_gpg import GPG


def velocity_and_time_bins(observations, episode_times):
    """A user binning: sign of the pole's angular velocity, and the episode time (module level: picklable)."""
    return np.column_stack((observations[:, 3] > 0, episode_times))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(binning="space_time", bin_size=[0.5, 1.0, 0.1, 1.0], collection="episodes"),
        dict(binning=velocity_and_time_bins),
        dict(binning=lambda obs, t: t // 5),  # a lambda is saved the way SB3 saves schedules (cloudpickle)
    ],
)
def test_save_load_round_trip(tmp_path, kwargs):
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = GPG("MlpPolicy", env, n_steps=32, batch_size=32, seed=0, **kwargs)
    model.learn(64)
    model.save(tmp_path / "gpg")
    loaded = GPG.load(tmp_path / "gpg", env=env)

    observations = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    np.testing.assert_array_equal(
        model.predict(observations, deterministic=True)[0], loaded.predict(observations, deterministic=True)[0]
    )
    assert loaded.bin_size == model.bin_size and loaded.collection == model.collection
    keys = (observations, np.arange(20))
    np.testing.assert_array_equal(loaded.rollout_buffer.binning(*keys), model.rollout_buffer.binning(*keys))
    for name in ("learning_rate", "n_steps", "batch_size", "n_epochs", "gamma", "ent_coef", "max_grad_norm"):
        assert getattr(loaded, name) == getattr(model, name)
    steps_before = model.num_timesteps
    loaded.learn(64, reset_num_timesteps=False)
    assert loaded.num_timesteps >= steps_before + 64


def test_continued_training_keeps_counting_and_episode_time():
    model = GPG("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=0), n_steps=16, batch_size=32, seed=0)
    model.learn(32)
    episode_time = model._episode_time.copy()
    model.learn(32, reset_num_timesteps=False)
    assert model.num_timesteps == 64
    first_times = model.rollout_buffer.episode_times[0]
    # The second learn() call's first rollout continued the episodes of the first call (no reset).
    assert np.all((first_times == episode_time) | model.rollout_buffer.episode_starts[0])


def test_set_env_callbacks_progress_bar_and_tensorboard(tmp_path):
    model = GPG("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32, seed=0, tensorboard_log=str(tmp_path / "tb"))
    new_env = make_vec_env("CartPole-v1", n_envs=1, seed=1)
    model.set_env(new_env)
    assert model.get_env() is new_env
    checkpoint = CheckpointCallback(save_freq=32, save_path=str(tmp_path / "checkpoints"), name_prefix="gpg")
    evaluation = EvalCallback(
        make_vec_env("CartPole-v1", n_envs=1, seed=2), eval_freq=32, n_eval_episodes=2, log_path=str(tmp_path / "eval")
    )
    model.learn(192, callback=[checkpoint, evaluation], progress_bar=True)
    saved = sorted((tmp_path / "checkpoints").glob("gpg_*_steps.zip"))
    assert saved, "CheckpointCallback saved nothing"
    GPG.load(saved[-1])
    assert len(np.load(tmp_path / "eval" / "evaluations.npz")["timesteps"]) >= 1
    assert list((tmp_path / "tb").glob("GPG_1/events.out.tfevents.*"))


def test_vec_normalize(tmp_path):
    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=2, seed=0), norm_obs=True, norm_reward=True)
    model = GPG("MlpPolicy", env, n_steps=64, batch_size=64, seed=0)
    model.learn(256)
    assert env.obs_rms.count > 256  # the statistics were updated through GPG's own rollout loop
    env.save(tmp_path / "vecnormalize.pkl")
    model.save(tmp_path / "gpg")
    env2 = VecNormalize.load(tmp_path / "vecnormalize.pkl", make_vec_env("Pendulum-v1", n_envs=2, seed=0))
    loaded = GPG.load(tmp_path / "gpg", env=env2)
    loaded.learn(128, reset_num_timesteps=False)


@pytest.mark.parametrize("env_id,policy_kwargs", [("CartPole-v1", {}), ("Pendulum-v1", dict(net_arch=dict(pi=[32], vf=[16])))])
def test_warm_start_from_ppo_copies_the_actor(tmp_path, env_id, policy_kwargs):
    ppo = PPO("MlpPolicy", env_id, n_steps=64, batch_size=32, policy_kwargs=policy_kwargs, seed=0)
    ppo.learn(64)
    ppo.save(tmp_path / "ppo")
    gpg = GPG.from_ppo(str(tmp_path / "ppo"), env=env_id, binning="none")

    observations = th.as_tensor(np.random.default_rng(0).normal(size=(32, *ppo.observation_space.shape)), dtype=th.float32)
    with th.no_grad():
        ppo_dist = ppo.policy.get_distribution(observations)
        gpg_dist = gpg.policy.get_distribution(observations)
        actions = ppo_dist.get_actions()
        th.testing.assert_close(gpg_dist.log_prob(actions), ppo_dist.log_prob(actions))
        th.testing.assert_close(gpg_dist.get_actions(deterministic=True), ppo_dist.get_actions(deterministic=True))
    assert gpg.binning == "none" and gpg.n_steps == 64 and gpg.batch_size == 32
    assert not any("value" in name for name, _ in gpg.policy.named_parameters())
    gpg.learn(64)


def test_loading_a_ppo_checkpoint_points_to_from_ppo(tmp_path):
    PPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32).save(tmp_path / "ppo")
    with pytest.raises(ValueError, match=r"GPG\.from_ppo"):
        GPG.load(tmp_path / "ppo")

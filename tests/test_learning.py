"""GPG learns: CartPole-v1 solved with a fixed seed."""

import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_gpg import GPG


@pytest.mark.slow
def test_gpg_solves_cartpole():
    # Complete-episode groups: with the window, returns in late time bins are cut at different points once
    # episodes outlast it. These settings solved 4 of 4 seeds in a check (evaluation >= 498 at 80k steps).
    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    model = GPG("MlpPolicy", env, n_steps=128, batch_size=256, n_epochs=4, learning_rate=2.5e-3, collection="episodes", seed=0)
    model.learn(80_000)
    mean_reward, _ = evaluate_policy(model, make_vec_env("CartPole-v1", n_envs=1, seed=100), n_eval_episodes=20)
    assert mean_reward >= 475

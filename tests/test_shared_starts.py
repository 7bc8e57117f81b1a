"""GRPO's group in GPG: ``shared_starts=K`` envs per initial state, compared only with their siblings."""

import importlib.util

import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.vec_env import SubprocVecEnv, VecNormalize

from sb3_gpg import GPG
from sb3_gpg.arguments import ArgumentError
from sb3_gpg.vec_env import make_vec_env
from tests.test_estimator import reference_algorithm2

HAS_ENVPOOL = importlib.util.find_spec("envpool") is not None


def pendulum(backend: str, n_envs: int = 6):
    """Pendulum starts at a random angle and velocity: equal starts mean equal seeds."""
    if backend == "dummy":
        return sb3_make_vec_env("Pendulum-v1", n_envs=n_envs, seed=0)
    if backend == "subproc":
        return sb3_make_vec_env("Pendulum-v1", n_envs=n_envs, seed=0, vec_env_cls=SubprocVecEnv)
    if backend == "vecnormalize":
        return VecNormalize(sb3_make_vec_env("Pendulum-v1", n_envs=n_envs, seed=0))
    return make_vec_env("Pendulum-v1", n_envs=n_envs, backend=backend, seed=0)


def first_observations(model, rollouts: int) -> list[np.ndarray]:
    """The first observation of each rollout's group (the seeded start of every env)."""
    firsts = []
    for _ in range(rollouts):
        model.learn(model.n_steps * model.n_envs, reset_num_timesteps=False)
        firsts.append(model.rollout_buffer.observations[0].copy())
    return firsts


@pytest.mark.parametrize(
    "backend",
    [
        "dummy",
        "subproc",
        "vecnormalize",
        "gymnasium",
        pytest.param("envpool", marks=pytest.mark.skipif(not HAS_ENVPOOL, reason="envpool is not installed")),
    ],
)
def test_blocks_start_together_and_differ_from_other_blocks_and_rollouts(backend):
    env = pendulum(backend)
    model = GPG("MlpPolicy", env, n_steps=8, batch_size=64, n_epochs=1, collection="episodes", shared_starts=3, seed=0)
    first, second = first_observations(model, rollouts=2)
    for start in (first, second):
        np.testing.assert_array_equal(start[0], start[1])
        np.testing.assert_array_equal(start[0], start[2])
        np.testing.assert_array_equal(start[3], start[5])
        assert not np.allclose(start[0], start[3])  # the two blocks start apart
    assert not np.allclose(first[0], second[0])  # and each rollout draws new starts
    env.close()


def test_siblings_draw_their_own_noise_after_the_shared_start():
    env = pendulum("dummy", n_envs=4)
    model = GPG("MlpPolicy", env, n_steps=8, batch_size=32, collection="episodes", shared_starts=2, seed=0)
    model._setup_learn(32)
    model._start_round(env)
    draws = [sub_env.unwrapped.np_random.random() for sub_env in env.envs]
    assert len(set(draws)) == 4


def test_starts_are_reproducible_with_the_seed():
    def starts(seed):
        model = GPG(
            "MlpPolicy", pendulum("dummy"), n_steps=8, batch_size=64, collection="episodes", shared_starts=2, seed=seed
        )
        return first_observations(model, rollouts=1)[0]

    np.testing.assert_array_equal(starts(5), starts(5))
    assert not np.allclose(starts(5), starts(6))


def test_native_vector_env_cannot_seed_sub_envs_and_says_so():
    env = make_vec_env("CartPole-v1", n_envs=4, backend="gymnasium", seed=0)  # gymnasium's numpy-vectorized CartPole
    model = GPG("MlpPolicy", env, n_steps=8, batch_size=32, collection="episodes", shared_starts=2)
    with pytest.raises(ValueError, match=r"CartPoleVectorEnv cannot reset a sub-env to a seed of its own"):
        model.learn(32)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(shared_starts=4), r"shared_starts=4 does not divide n_envs=6 into blocks: valid values are 1, 2, 3, 6"),
        (
            dict(shared_starts=2, collection="window"),
            r"shared_starts=2 needs collection='episodes' \(got collection='window'\)",
        ),
        (dict(shared_starts=0, collection="episodes"), r"shared_starts=0 must be an integer >= 1"),
        (dict(shared_starts=2.5, collection="episodes"), r"shared_starts=2.5 must be an integer >= 1"),
        (dict(shared_starts=2, history_weight=0.5), r"history_weight=0.5 with shared_starts=2: the bins of shared starts"),
    ],
)
def test_bad_shared_starts_are_refused(kwargs, match):
    kwargs = {"collection": "episodes", **kwargs}
    with pytest.raises(ArgumentError, match=match) as error:
        GPG("MlpPolicy", pendulum("dummy"), n_steps=8, batch_size=48, **kwargs)
    assert error.value.argument in ("shared_starts", "history_weight")


@pytest.mark.parametrize("binning", ["time", "none"])
def test_buffer_advantages_are_algorithm2_with_block_keys(binning):
    """Process supervision (time bins) and outcome supervision (one bin) per block, against the loop reference
    with keys (f(s, t), block, round). n_steps=300 > the 200-step episodes: two rounds per rollout."""
    model = GPG(
        "MlpPolicy",
        pendulum("dummy"),
        n_steps=300,
        batch_size=600,
        n_epochs=1,
        collection="episodes",
        shared_starts=3,
        binning=binning,
        seed=0,
    )
    model.learn(1)
    buffer = model.rollout_buffer
    rows = buffer.pos
    assert buffer.start_rounds[:rows].max() == 1
    blocks = np.arange(6) // 3
    keys = [
        [
            (buffer.episode_times[step, env] if binning == "time" else 0, blocks[env], buffer.start_rounds[step, env])
            for env in range(6)
        ]
        for step in range(rows)
    ]
    rewards, starts = buffer.rewards[:rows].astype(np.float64), buffer.episode_starts[:rows]
    _, expected = reference_algorithm2(rewards, starts, keys, model.gamma, valid=buffer.valid[:rows])
    np.testing.assert_allclose(buffer.advantages[:rows], expected, rtol=1e-5, atol=1e-4)
    assert buffer.group_stats.bins == (400 if binning == "time" else 2) * 2  # per block and round


def test_outcome_supervision_advantage_is_return_minus_block_mean():
    """``binning="none"``: the first step's advantage is the episode's return minus its block's mean return."""
    model = GPG(
        "MlpPolicy",
        pendulum("dummy"),
        n_steps=8,
        batch_size=64,
        collection="episodes",
        shared_starts=3,
        binning="none",
        gamma=1.0,
        seed=0,
    )
    model.learn(1)
    returns = model.rollout_buffer.returns[0].astype(np.float64)
    block_means = returns.reshape(2, 3).mean(axis=1).repeat(3)
    np.testing.assert_allclose(model.rollout_buffer.advantages[0], returns - block_means, rtol=1e-4, atol=1e-3)


def test_shared_starts_are_saved_and_loaded(tmp_path):
    model = GPG("MlpPolicy", pendulum("dummy"), n_steps=8, batch_size=48, collection="episodes", shared_starts=3)
    model.save(tmp_path / "gpg")
    loaded = GPG.load(tmp_path / "gpg", env=pendulum("dummy"))
    assert loaded.shared_starts == 3 and loaded.rollout_buffer.shared_starts == 3

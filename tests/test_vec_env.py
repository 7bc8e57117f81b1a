"""Batched backends behind SB3's VecEnv: step-for-step against DummyVecEnv + Monitor where the random streams
allow it, and the same-step reset semantics against a physics oracle where they do not."""

import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import TimeLimit
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from sb3_gpg.vec_env import VEC_ENV_BACKENDS, EnvPoolVecEnv, GymnasiumVecEnv, make_vec_env

SEED = 3


def random_actions(vec_env, n_steps: int, seed: int = 0) -> np.ndarray:
    space = vec_env.action_space
    space.seed(seed)
    return np.stack([np.stack([space.sample() for _ in range(vec_env.num_envs)]) for _ in range(n_steps)])


def assert_obs_equal(actual, expected) -> None:
    if isinstance(expected, dict):
        assert set(actual) == set(expected)
        for key in expected:
            np.testing.assert_array_equal(actual[key], expected[key])
    else:
        np.testing.assert_array_equal(actual, expected)


def assert_same_trajectories(reference, adapter, actions: np.ndarray) -> dict[str, np.ndarray]:
    """Step both with the same actions; everything SB3 reads must be identical. Returns per-env counts."""
    assert_obs_equal(adapter.reset(), reference.reset())
    ends = np.zeros(reference.num_envs, dtype=int)
    timeouts = np.zeros(reference.num_envs, dtype=int)
    for step, action in enumerate(actions):
        obs, rewards, dones, infos = adapter.step(action)
        ref_obs, ref_rewards, ref_dones, ref_infos = reference.step(action)
        assert_obs_equal(obs, ref_obs)
        assert rewards.dtype == ref_rewards.dtype == np.float32 and rewards.shape == (reference.num_envs,)
        assert dones.dtype == ref_dones.dtype == bool
        np.testing.assert_array_equal(rewards, ref_rewards)
        np.testing.assert_array_equal(dones, ref_dones)
        assert len(infos) == reference.num_envs
        for info, ref_info in zip(infos, ref_infos, strict=True):
            assert set(info) == set(ref_info), (step, info, ref_info)
            assert info["TimeLimit.truncated"] == ref_info["TimeLimit.truncated"]
            for key in set(ref_info) - {"TimeLimit.truncated", "terminal_observation", "episode"}:
                assert info[key] == ref_info[key], key
        for env_index in np.flatnonzero(ref_dones):
            info, ref_info = infos[env_index], ref_infos[env_index]
            assert_obs_equal(info["terminal_observation"], ref_info["terminal_observation"])
            assert info["episode"]["r"] == ref_info["episode"]["r"]
            assert info["episode"]["l"] == ref_info["episode"]["l"]
            assert isinstance(info["episode"]["t"], float)
            ends[env_index] += 1
            timeouts[env_index] += ref_info["TimeLimit.truncated"]
    for ref_reset_info, reset_info in zip(reference.reset_infos, adapter.reset_infos, strict=True):
        assert reset_info == ref_reset_info
    return {"ends": ends, "timeouts": timeouts}


def sync_next_step(env_id: str, n_envs: int, env_kwargs: dict) -> GymnasiumVecEnv:
    # Gymnasium's default NEXT_STEP autoreset, translated by the adapter with a masked partial reset.
    venv = gym.make_vec(env_id, n_envs, vectorization_mode="sync", render_mode="rgb_array", **env_kwargs)
    vec_env = GymnasiumVecEnv(venv)
    vec_env.seed(SEED)
    return vec_env


@pytest.mark.parametrize(
    "env_id, n_envs, n_steps, env_kwargs, mode",
    [
        ("CartPole-v1", 4, 600, {}, "sync"),
        ("CartPole-v1", 4, 300, {"max_episode_steps": 20}, "sync"),
        ("CartPole-v1", 4, 300, {"max_episode_steps": 20}, "sync-next-step"),
        ("CartPole-v1", 2, 150, {"max_episode_steps": 20}, "async"),
        ("LunarLander-v3", 4, 400, {}, "sync"),
        ("LunarLander-v3", 4, 200, {"max_episode_steps": 40}, "sync"),
    ],
)
def test_matches_dummy_vec_env(env_id, n_envs, n_steps, env_kwargs, mode):
    reference = make_vec_env(env_id, n_envs, backend="dummy", seed=SEED, env_kwargs=env_kwargs)
    if mode == "sync-next-step":
        adapter = sync_next_step(env_id, n_envs, env_kwargs)
    else:
        adapter = make_vec_env(env_id, n_envs, backend="gymnasium", seed=SEED, env_kwargs=env_kwargs, vectorization_mode=mode)
    assert adapter.num_envs == n_envs
    assert adapter.observation_space == reference.observation_space
    assert adapter.action_space == reference.action_space
    assert adapter.render_mode == reference.render_mode == "rgb_array"
    actions = random_actions(reference, n_steps)
    counts = assert_same_trajectories(reference, adapter, actions)
    # Several episodes ended in every env, so the same-step reset and the statistics were exercised.
    assert (counts["ends"] >= 2).all(), counts
    if "max_episode_steps" in env_kwargs:
        assert counts["timeouts"].sum() > 0, counts
    # seed() then reset() reseeds sub-env i with seed + i, as DummyVecEnv does.
    reference.seed(SEED + 100)
    adapter.seed(SEED + 100)
    assert_same_trajectories(reference, adapter, actions[:50])
    reference.close()
    adapter.close()


class CountdownEnv(gym.Env):
    """Dict observations, a random episode length, and info entries at reset and on the last step."""

    observation_space = spaces.Dict({"left": spaces.Box(0, 10, (1,), np.float32), "parity": spaces.Discrete(2)})
    action_space = spaces.Discrete(2)

    def _obs(self):
        return {"left": np.array([self.left], dtype=np.float32), "parity": self.left % 2}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.left = int(self.np_random.integers(1, 6))
        return self._obs(), {"length": self.left}

    def step(self, action):
        self.left -= 1
        terminated = self.left == 0
        info = {"is_success": bool(action)} if terminated else {}
        return self._obs(), float(action) + 0.1, terminated, False, info


def make_countdown():
    return TimeLimit(CountdownEnv(), max_episode_steps=3)


@pytest.mark.parametrize("autoreset_mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_dict_observations_and_final_step_infos(autoreset_mode):
    n_envs = 3
    reference = DummyVecEnv([lambda: Monitor(make_countdown()) for _ in range(n_envs)])
    adapter = GymnasiumVecEnv(SyncVectorEnv([make_countdown for _ in range(n_envs)], autoreset_mode=autoreset_mode))
    for vec_env in (reference, adapter):
        vec_env.seed(SEED)
    counts = assert_same_trajectories(reference, adapter, random_actions(reference, 60))
    assert (counts["ends"] >= 5).all() and counts["timeouts"].sum() > 0, counts


def cartpole_oracle():
    env = gym.make("CartPole-v1").unwrapped

    def step(obs: np.ndarray, action: int) -> np.ndarray:
        env.state = obs.astype(np.float64)
        env.steps_beyond_terminated = None
        return env.step(int(action))[0]

    return step


def check_cartpole_semantics(vec_env, n_steps: int, max_episode_steps: int, envpool: bool = False) -> None:
    """
    Check same-step reset on a CartPole backend whose random stream cannot match DummyVecEnv's: every next
    observation (or terminal observation) must follow from the previous observation and the action by CartPole's
    physics, so the action after a reset is applied, not dropped as in gymnasium's NEXT_STEP autoreset.
    """
    oracle = cartpole_oracle()
    actions = random_actions(vec_env, n_steps)
    obs = vec_env.reset()
    assert obs.dtype == vec_env.observation_space.dtype and obs.shape == (vec_env.num_envs, 4)
    lengths = np.zeros(vec_env.num_envs, dtype=int)
    ends = timeouts = 0
    for action in actions:
        next_obs, rewards, dones, infos = vec_env.step(action)
        assert rewards.dtype == np.float32 and dones.dtype == bool
        lengths += 1
        for env_index in range(vec_env.num_envs):
            info = infos[env_index]
            last_obs = info["terminal_observation"] if dones[env_index] else next_obs[env_index]
            np.testing.assert_allclose(last_obs, oracle(obs[env_index], action[env_index]), rtol=1e-5, atol=1e-6)
            if not dones[env_index]:
                assert set(info) == {"TimeLimit.truncated"} and not info["TimeLimit.truncated"]
                continue
            out_of_bounds = abs(last_obs[0]) > 2.4 or abs(last_obs[2]) > 12 * 2 * np.pi / 360
            assert out_of_bounds or lengths[env_index] == max_episode_steps
            if envpool:
                # envpool reports the time-limit cut as truncated, not terminated, even where the pole also fell.
                assert info["TimeLimit.truncated"] == (lengths[env_index] == max_episode_steps)
            else:
                assert info["TimeLimit.truncated"] == (not out_of_bounds)
            assert info["episode"]["l"] == lengths[env_index] and info["episode"]["r"] == lengths[env_index]
            # The returned observation is already the next episode's first one.
            assert np.all(np.abs(next_obs[env_index]) <= 0.05)
            lengths[env_index] = 0
            ends += 1
            timeouts += info["TimeLimit.truncated"]
        obs = next_obs
    assert ends >= 2 * vec_env.num_envs and timeouts > 0, (ends, timeouts)


def test_native_cartpole_same_step_semantics():
    # CartPoleVectorEnv draws all sub-envs' initial states from one generator, so it cannot match DummyVecEnv's
    # per-env seeds step for step; its semantics are checked against the physics instead.
    vec_env = make_vec_env("CartPole-v1", 4, seed=SEED, env_kwargs={"max_episode_steps": 20})
    assert isinstance(vec_env.venv, CartPoleVectorEnv)
    check_cartpole_semantics(vec_env, 300, max_episode_steps=20)


def test_native_cartpole_keeps_its_random_stream():
    # With one sub-env, the adapter must be the unmodified native env with the step that its NEXT_STEP
    # autoreset spends on ignoring the action cut out: the partial reset draws what that step would have drawn.
    raw = CartPoleVectorEnv(num_envs=1, max_episode_steps=20)
    vec_env = make_vec_env(
        "CartPole-v1", 1, seed=SEED, env_kwargs={"max_episode_steps": 20}, vectorization_mode="vector_entry_point"
    )
    raw_obs, _ = raw.reset(seed=SEED)
    np.testing.assert_array_equal(vec_env.reset(), raw_obs)
    ends = 0
    for action in random_actions(vec_env, 200):
        obs, rewards, dones, infos = vec_env.step(action)
        raw_obs, raw_rewards, terminated, truncated, _ = raw.step(action)
        np.testing.assert_array_equal(dones, terminated | truncated)
        np.testing.assert_array_equal(rewards, raw_rewards)
        if dones[0]:
            ends += 1
            np.testing.assert_array_equal(infos[0]["terminal_observation"], raw_obs[0])
            assert infos[0]["TimeLimit.truncated"] == bool(truncated[0] and not terminated[0])
            raw_obs, *_ = raw.step(action)
        np.testing.assert_array_equal(obs, raw_obs)
    assert ends >= 5


def test_backends_without_partial_reset_are_refused():
    # A NEXT_STEP backend without a known partial reset would silently re-draw every sub-env.
    wrapped = gym.wrappers.vector.RecordEpisodeStatistics(CartPoleVectorEnv(num_envs=2))
    with pytest.raises(ValueError, match="SAME_STEP"):
        GymnasiumVecEnv(wrapped)


def test_sub_env_access():
    sync = make_vec_env("CartPole-v1", 3, seed=SEED, vectorization_mode="sync")
    assert [spec.id for spec in sync.get_attr("spec")] == ["CartPole-v1"] * 3
    sync.set_attr("marker", 7, indices=[1])
    assert sync.get_attr("marker", indices=1) == [7]
    assert sync.env_method("get_wrapper_attr", "marker", indices=[1]) == [7]
    assert sync.env_is_wrapped(Monitor) == [True] * 3
    assert sync.env_is_wrapped(TimeLimit, indices=[0, 2]) == [True, True]
    sync.reset()
    assert sync.render().ndim == 3

    native = make_vec_env("CartPole-v1", 3, seed=SEED, vectorization_mode="vector_entry_point")
    assert native.get_attr("render_mode") == ["rgb_array"] * 3
    assert native.env_is_wrapped(Monitor) == [True] * 3
    with pytest.raises(NotImplementedError, match="env_method"):
        native.env_method("reset")
    with pytest.raises(NotImplementedError, match="indices"):
        native.set_attr("max_episode_steps", 10, indices=[0])
    native.reset()
    assert native.render().ndim == 3
    for vec_env in (sync, native):
        vec_env.close()


def test_make_vec_env_errors(monkeypatch):
    with pytest.raises(ValueError, match=r"Unknown backend='jax': valid backends are dummy, subproc, gymnasium, envpool"):
        make_vec_env("CartPole-v1", 2, backend="jax")
    assert VEC_ENV_BACKENDS == ("dummy", "subproc", "gymnasium", "envpool")
    with pytest.raises(ValueError, match=r"'gpu'.*valid modes"):
        make_vec_env("CartPole-v1", 2, vectorization_mode="gpu")
    with pytest.raises(ValueError, match="only applies to backend='gymnasium'"):
        make_vec_env("CartPole-v1", 2, backend="dummy", vectorization_mode="sync")
    # A None entry in sys.modules makes `import envpool` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "envpool", None)
    with pytest.raises(ImportError, match="pip install envpool"):
        make_vec_env("CartPole-v1", 2, backend="envpool")


@pytest.mark.parametrize(
    "backend, vec_env_cls", [("dummy", DummyVecEnv), ("subproc", SubprocVecEnv), ("gymnasium", GymnasiumVecEnv)]
)
def test_backends(backend, vec_env_cls):
    vec_env = make_vec_env("CartPole-v1", 2, backend=backend, seed=SEED)
    assert isinstance(vec_env, vec_env_cls)
    assert vec_env.reset().shape == (2, 4)
    vec_env.close()


def test_ppo_learns_on_the_adapter():
    vec_env = make_vec_env("CartPole-v1", 4, seed=SEED)
    model = PPO("MlpPolicy", vec_env, n_steps=64, batch_size=64, n_epochs=1, seed=SEED)
    model.learn(total_timesteps=256)
    assert len(model.ep_info_buffer) > 0
    assert all(set(info) >= {"r", "l", "t"} for info in model.ep_info_buffer)
    mean_reward, _ = evaluate_policy(model, vec_env, n_eval_episodes=4, warn=True)
    assert mean_reward > 0


# envpool is optional: the tests below run where it installs (a manylinux wheel).


def test_envpool_same_step_semantics():
    pytest.importorskip("envpool")
    vec_env = make_vec_env("CartPole-v1", 4, backend="envpool", seed=SEED, env_kwargs={"max_episode_steps": 20})
    assert isinstance(vec_env, EnvPoolVecEnv)
    assert vec_env.observation_space.shape == (4,) and vec_env.action_space == spaces.Discrete(2)
    check_cartpole_semantics(vec_env, 300, max_episode_steps=20, envpool=True)
    vec_env.close()


def test_envpool_seeding():
    pytest.importorskip("envpool")
    actions = random_actions(make_vec_env("CartPole-v1", 3, backend="dummy"), 80)

    def rollout(vec_env) -> list[np.ndarray]:
        trajectory = [vec_env.reset()]
        for action in actions:
            obs, rewards, dones, _ = vec_env.step(action)
            trajectory += [obs, rewards, dones]
        return trajectory

    first = make_vec_env("CartPole-v1", 3, backend="envpool", seed=SEED)
    second = make_vec_env("CartPole-v1", 3, backend="envpool", seed=SEED)
    expected = rollout(first)
    for actual, wanted in zip(rollout(second), expected, strict=True):
        np.testing.assert_array_equal(actual, wanted)
    # seed() then reset() makes a pool with the new seeds: same seed, same trajectory again.
    assert first.seed(SEED) == [SEED, SEED + 1, SEED + 2]
    for actual, wanted in zip(rollout(first), expected, strict=True):
        np.testing.assert_array_equal(actual, wanted)
    first.seed(SEED + 1)
    assert not np.array_equal(first.reset(), expected[0])
    # Seeds outside envpool's int32 (SB3 and the Zoo draw up to 2**32 - 1) are folded in, deterministically.
    assert first.seed(2**32 - 5) == first.seed(2**32 - 5) == [(2**32 - 5) % (2**31 - 3) + i for i in range(3)]
    with pytest.raises(ValueError, match="batch_size"):
        EnvPoolVecEnv("CartPole-v1", 4, batch_size=2)
    for vec_env in (first, second):
        vec_env.close()


def test_ppo_learns_on_envpool():
    pytest.importorskip("envpool")
    vec_env = make_vec_env("CartPole-v1", 4, backend="envpool", seed=SEED)
    model = PPO("MlpPolicy", vec_env, n_steps=64, batch_size=64, n_epochs=1, seed=SEED)
    model.learn(total_timesteps=256)
    assert len(model.ep_info_buffer) > 0
    vec_env.close()

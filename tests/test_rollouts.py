"""Group collection: episode time, window and complete-episode modes, the buffer's advantages."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env

from sb3_gpg import GPG
from sb3_gpg.estimator import group_advantages
from tests.recording import recorded
from tests.test_estimator import episode_times_of, reference_algorithm2


class CountingEnv(gym.Env):
    """Observation = steps since reset; reward 1; episodes of random length (seeded), capped by a TimeLimit."""

    observation_space = gym.spaces.Box(0, 1000, (1,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        terminated = bool(self.np_random.random() < 0.15)
        return np.array([self.t], dtype=np.float32), 1.0, terminated, False, {}


def counting_vec_env(n_envs=3, max_episode_steps=6):
    return make_vec_env(
        CountingEnv,
        n_envs=n_envs,
        seed=0,
        wrapper_class=gym.wrappers.TimeLimit,
        wrapper_kwargs=dict(max_episode_steps=max_episode_steps),
    )


def collect(model, n_rollouts):
    """Run rollouts without training and return a copy of each buffer."""
    model._setup_learn(10_000, None)
    callback = model._init_callback(None)
    rollouts = []
    for _ in range(n_rollouts):
        assert model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
        buffer = model.rollout_buffer
        rows = buffer.pos
        rollouts.append(
            {
                name: getattr(buffer, name)[:rows].copy()
                for name in ("observations", "rewards", "episode_starts", "episode_times", "valid", "returns", "advantages")
            }
        )
        # Whether each env's last recorded step ended its episode.
        rollouts[-1]["last_dones"] = np.asarray(model._last_episode_starts, dtype=bool).copy()
    return rollouts


def test_episode_time_is_carried_across_rollouts():
    model = GPG("MlpPolicy", counting_vec_env(), n_steps=5, batch_size=15, seed=0)
    first, second = collect(model, 2)
    for rollout in (first, second):
        # CountingEnv observes its own episode time, so the recorded time must equal the observation.
        np.testing.assert_array_equal(rollout["episode_times"], rollout["observations"][..., 0])
    assert np.any(second["episode_times"][0] > 0), "some episode must continue from the first rollout"


def test_time_limit_truncation_is_an_episode_end_without_bootstrap():
    model = GPG("MlpPolicy", counting_vec_env(max_episode_steps=3), n_steps=12, batch_size=12, gamma=0.9, seed=0)
    (rollout,) = collect(model, 1)
    times = rollout["episode_times"]
    assert times.max() == 2  # the time limit cuts every episode at 3 steps
    last_steps = (times == 2)[:-1]
    # Reward 1 per step: the last step of a truncated episode has return exactly 1 (continuation 0).
    np.testing.assert_allclose(rollout["returns"][:-1][last_steps], 1.0)


def test_buffer_advantages_are_algorithm2_on_the_recorded_group():
    model = GPG(
        "MlpPolicy",
        counting_vec_env(n_envs=4, max_episode_steps=8),
        n_steps=10,
        batch_size=20,
        binning="space",
        bin_size=2.0,
        gamma=0.95,
        seed=1,
    )
    (rollout,) = collect(model, 1)
    keys = np.floor(rollout["observations"][..., 0] / 2.0 + 0.5).astype(int)
    keys = [[(k,) for k in row] for row in keys]
    _, expected = reference_algorithm2(rollout["rewards"].astype(np.float64), rollout["episode_starts"], keys, 0.95)
    np.testing.assert_allclose(rollout["advantages"], expected, rtol=1e-5, atol=1e-5)


def test_complete_episode_collection_never_truncates():
    model = GPG(
        "MlpPolicy", counting_vec_env(n_envs=4, max_episode_steps=50), n_steps=8, batch_size=16, collection="episodes", seed=0
    )
    for rollout in collect(model, 3):
        valid, starts, times = rollout["valid"], rollout["episode_starts"], rollout["episode_times"]
        n_rows = len(valid)
        assert n_rows >= 8
        for env in range(valid.shape[1]):
            kept = np.flatnonzero(valid[:, env])
            # A prefix of each env's steps is kept, it starts from a reset and covers at least n_steps...
            np.testing.assert_array_equal(kept, np.arange(len(kept)))
            assert len(kept) >= 8 and starts[0, env] and times[0, env] == 0
            # ... and ends where an episode ends: the next step is an episode start.
            end = kept[-1] + 1
            ended = rollout["last_dones"][env] if end == n_rows else starts[end, env]
            assert ended, f"env {env}'s last kept episode was cut at row {end}"
        # Each kept step's return is its episode's reward-to-go: nothing truncated entered the estimator.
        episode_lengths = np.zeros_like(times)
        for env in range(valid.shape[1]):
            for step in range(n_rows - 1, -1, -1):
                ends_here = step + 1 == n_rows or starts[step + 1, env]
                episode_lengths[step, env] = 1 if ends_here else episode_lengths[step + 1, env] + 1
        gamma = model.gamma
        expected = (1 - gamma**episode_lengths) / (1 - gamma)
        np.testing.assert_allclose(rollout["returns"][valid], expected[valid], rtol=1e-5)
        assert np.all(rollout["advantages"][~valid] == 0)


def test_group_statistics_are_logged():
    model = GPG("MlpPolicy", counting_vec_env(), n_steps=8, batch_size=24, seed=0)
    records = recorded(model)
    model.learn(48)
    logged = records[-1]
    for key in (
        "group/trajectories",
        "group/bins",
        "group/mean_samples_per_bin",
        "group/single_sample_share",
        "group/baseline_mean",
        "group/advantage_std",
    ):
        assert key in logged
    assert logged["group/trajectories"] >= 3
    for key in ("train/policy_gradient_loss", "train/entropy_loss", "train/approx_kl", "train/clip_fraction", "train/loss"):
        assert key in logged
    assert "train/value_loss" not in logged


def test_reproducible_with_seed():
    def train():
        model = GPG("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32, seed=3)
        model.learn(96)
        return [p.detach().clone() for p in model.policy.parameters()]

    for a, b in zip(train(), train(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("collection", ["window", "episodes"])
def test_estimator_sees_group_of_whole_rollout(collection):
    """The advantages the buffer stores equal the pure estimator applied to its arrays."""
    model = GPG("MlpPolicy", counting_vec_env(), n_steps=6, batch_size=18, collection=collection, seed=0)
    (rollout,) = collect(model, 1)
    expected = group_advantages(
        rollout["rewards"],
        rollout["episode_starts"],
        rollout["episode_times"],
        model.gamma,
        keys_include_time=True,
        valid=rollout["valid"],
    )
    np.testing.assert_allclose(rollout["advantages"], expected.advantages, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        rollout["episode_times"], episode_times_of(rollout["episode_starts"], rollout["episode_times"][0])
    )


def test_carry_collection_trains_each_step_once_with_its_complete_return():
    """collection="carry": the window's unfinished trajectories come back in the next rollout, where their episode
    ends; every step of the group has its complete return, and no step is lost or trained on twice."""
    model = GPG("MlpPolicy", counting_vec_env(n_envs=4, max_episode_steps=50), n_steps=8, batch_size=16, collection="carry")
    model._setup_learn(10_000, None)
    callback = model._init_callback(None)
    buffer, gamma, trained, previous_tail = model.rollout_buffer, model.gamma, 0, None
    for rollout in range(4):
        assert model.collect_rollouts(model.env, callback, buffer, model.n_steps)
        rows = buffer.pos
        valid, starts, times = buffer.valid[:rows], buffer.episode_starts[:rows], buffer.episode_times[:rows]
        carried_rows = rows - model.n_steps
        if previous_tail is not None:  # the held-back steps come back unchanged, right-aligned above the new ones
            for env, (observations, log_probs) in previous_tail.items():
                np.testing.assert_array_equal(
                    buffer.observations[carried_rows - len(log_probs) : carried_rows, env], observations
                )
                np.testing.assert_array_equal(buffer.log_probs[carried_rows - len(log_probs) : carried_rows, env], log_probs)
        last_dones = np.asarray(model._last_episode_starts, dtype=bool)
        for env in range(4):
            kept = np.flatnonzero(valid[:, env])
            if len(kept):
                assert times[kept[0], env] == 0  # a group trajectory starts where its episode starts
                end = kept[-1] + 1  # ... and ends where it ends
                assert last_dones[env] if end == rows else starts[end, env], f"rollout {rollout}: env {env} cut at {end}"
        previous_tail = {
            env: (record["observations"], record["log_probs"]) for env, record in enumerate(buffer._carried) if record
        }
        lengths = np.zeros_like(times)
        for env in range(4):
            for step in range(rows - 1, -1, -1):
                ends_here = step + 1 == rows or starts[step + 1, env]
                lengths[step, env] = 1 if ends_here else lengths[step + 1, env] + 1
        np.testing.assert_allclose(buffer.returns[:rows][valid], ((1 - gamma**lengths) / (1 - gamma))[valid], rtol=1e-5)
        assert np.all(buffer.advantages[:rows][~valid] == 0)
        trained += int(valid.sum())
    held_back = sum(len(log_probs) for _, log_probs in previous_tail.values())
    assert trained + held_back == 4 * model.n_steps * 4  # every step taken is trained on once, or still held back


def test_carry_collection_advantages_are_algorithm2_on_the_complete_trajectories():
    model = GPG(
        "MlpPolicy", counting_vec_env(n_envs=4, max_episode_steps=20), n_steps=6, batch_size=16, collection="carry",
        binning="space", bin_size=2.0, gamma=0.95, seed=3,
    )  # fmt: skip
    model._setup_learn(10_000, None)
    callback = model._init_callback(None)
    for _ in range(3):
        assert model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
    buffer = model.rollout_buffer
    rows = buffer.pos
    valid = buffer.valid[:rows]
    starts = buffer.episode_starts[:rows] | np.vstack((np.zeros((1, 4), bool), valid[1:] & ~valid[:-1]))
    keys = [[(k,) for k in row] for row in np.floor(buffer.observations[:rows, :, 0] / 2.0 + 0.5).astype(int)]
    _, expected = reference_algorithm2(buffer.rewards[:rows].astype(np.float64), starts, keys, 0.95, valid=valid)
    np.testing.assert_allclose(buffer.advantages[:rows], expected, rtol=1e-5, atol=1e-5)
    assert valid.sum() < rows * 4  # padding or held-back steps are outside the group


def test_carry_forgets_held_back_steps_when_the_envs_are_reset():
    model = GPG("MlpPolicy", counting_vec_env(n_envs=2, max_episode_steps=50), n_steps=8, batch_size=16, collection="carry")
    model.learn(16)
    assert model.rollout_buffer._carried is not None
    model.learn(16, reset_num_timesteps=True)  # resets the envs: no trajectory continues
    assert model.rollout_buffer.pos == 0 or model.rollout_buffer.episode_starts[0].all()


def test_carry_rollouts_whose_episodes_all_run_on_train_nothing_until_one_ends():
    """Pendulum's episodes last 200 steps: with a 64-step window the first three groups are empty (everything is
    carried on), and the update waits for the first group with a finished episode."""
    model = GPG("MlpPolicy", make_vec_env("Pendulum-v1", n_envs=2, seed=0), n_steps=64, batch_size=64, collection="carry")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(3 * 128)
    assert model.rollout_buffer.group_stats.steps == 0 and model._n_updates == 0
    assert all(np.array_equal(a.numpy(), b.detach().numpy()) for a, b in zip(before, model.policy.parameters(), strict=True))
    model.learn(128, reset_num_timesteps=False)
    assert model.rollout_buffer.group_stats.steps == 2 * 200 and model._n_updates > 0

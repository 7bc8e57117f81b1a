"""Bad input gets a clear error that names the bad value and the valid ones; nothing is silently wrong."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.env_util import make_vec_env

from sb3_gpg import GPG
from sb3_gpg.arguments import ArgumentError
from sb3_gpg.binning import make_binning
from tests.recording import recorded


@pytest.mark.parametrize("argument,value", [("gae_lambda", 0.95), ("vf_coef", 0.5), ("clip_range_vf", 0.2)])
def test_critic_arguments_fail(argument, value):
    with pytest.raises(ArgumentError, match=rf"{argument} configures a critic, but GPG has no value function") as error:
        GPG("MlpPolicy", "CartPole-v1", **{argument: value})
    assert error.value.argument == argument


def test_unknown_argument_is_a_type_error():
    with pytest.raises(TypeError, match="binsize"):
        GPG("MlpPolicy", "CartPole-v1", binsize=0.5)


def test_unknown_binning_lists_the_valid_ones():
    with pytest.raises(
        ArgumentError, match=r"Unknown binning='spacetime': valid binnings are time, none, space, space_time, state"
    ):
        GPG("MlpPolicy", "CartPole-v1", binning="spacetime")


@pytest.mark.parametrize(
    "bin_size,match",
    [
        (0.0, "must be a positive finite number"),
        (-1.0, "must be a positive finite number"),
        ("0.5", r"bin_size='0.5' must be a positive finite number"),
        ([0.5, "x"], r"bin_size=\[0.5, 'x'\] must be a positive finite number"),
        ([0.5, 0.5], "has 2 values but .* has 4 dimensions"),
    ],
)
def test_bad_bin_size(bin_size, match):
    with pytest.raises(ArgumentError, match=match) as error:
        GPG("MlpPolicy", "CartPole-v1", binning="space", bin_size=bin_size)
    assert error.value.argument == "bin_size"


@pytest.mark.parametrize("binning", ["time", "none"])
def test_bin_size_with_a_binning_without_cells_warns(binning):
    with pytest.warns(UserWarning, match=rf"bin_size=0.5 is ignored: the '{binning}' binning has no cells"):
        GPG("MlpPolicy", "CartPole-v1", binning=binning, bin_size=0.5)


def test_state_binning_with_bin_size_warns():
    with pytest.warns(UserWarning, match=r"bin_size=0.5 is ignored: the 'state' binning has no cells"):
        GPG("MlpPolicy", "CliffWalking-v1", binning="state", bin_size=0.5)


@pytest.mark.parametrize("binning", ["space", "space_time"])
def test_spatial_binning_needs_box_observations(binning):
    with pytest.raises(ValueError, match=r"needs a continuous Box observation space, got Discrete\(48\)"):
        GPG("MlpPolicy", "CliffWalking-v1", binning=binning)


def test_state_binning_needs_discrete_observations():
    with pytest.raises(ValueError, match=r"binning='state' .* needs a discrete observation space .* got Box"):
        GPG("MlpPolicy", "CartPole-v1", binning="state")


def test_unknown_collection_mode():
    with pytest.raises(ArgumentError, match=r"Unknown collection='episode': valid values are 'window', 'episodes'"):
        GPG("MlpPolicy", "CartPole-v1", collection="episode")


@pytest.mark.parametrize(
    "argument,value,match",
    [
        ("n_steps", 32.5, r"n_steps=32.5 must be an integer >= 1"),
        ("batch_size", "64", r"batch_size='64' must be an integer >= 1"),
        ("n_epochs", 0, r"n_epochs=0 must be an integer >= 1"),
        ("learning_rate", "fast", r"learning_rate='fast' must be a finite number or a schedule"),
        ("gamma", 1.5, r"gamma=1.5 must be a number in \[0, 1\]"),
        ("normalize_advantage", "no", r"normalize_advantage='no' must be True or False"),
        ("ent_coef", "high", r"ent_coef='high' must be a finite number"),
        ("max_grad_norm", None, r"max_grad_norm=None must be a finite number"),
        ("target_kl", -0.1, r"target_kl=-0.1 must be a positive number or None"),
        ("sde_sample_freq", 2.5, r"sde_sample_freq=2.5 must be an integer >= -1"),
        ("stats_window_size", 0, r"stats_window_size=0 must be an integer >= 1"),
    ],
)
def test_ppo_arguments_of_the_wrong_type_are_named(argument, value, match):
    with pytest.raises(ArgumentError, match=match) as error:
        GPG("MlpPolicy", "CartPole-v1", **{argument: value})
    assert error.value.argument == argument


def test_non_group_rollout_buffer_is_refused():
    with pytest.raises(ArgumentError, match="'RolloutBuffer' cannot compute group baselines"):
        GPG("MlpPolicy", "CartPole-v1", rollout_buffer_class=RolloutBuffer)


def test_actor_critic_policy_class_is_refused():
    from stable_baselines3.common.policies import ActorCriticPolicy

    with pytest.raises(ValueError, match="ActorCriticPolicy is not critic-free"):
        GPG(ActorCriticPolicy, "CartPole-v1")


def test_callable_binning_with_wrong_shape():
    model = GPG("MlpPolicy", "CartPole-v1", n_steps=8, batch_size=8, binning=lambda obs, t: t[:3])
    with pytest.raises(ValueError, match=r"returned bin keys of shape \(3,\) for 8 steps"):
        model.learn(8)


# --- Failure 2: non-finite bin keys ---


def nan_at(keys, index):
    keys = np.array(keys, dtype=np.float64)
    keys[index] = np.nan
    return keys


@pytest.mark.parametrize(
    "key_fn",
    [
        lambda obs, t: nan_at(t, 7),  # one column: every NaN step would share one bin
        lambda obs, t: nan_at(np.column_stack((obs[:, 0], t)), (7, 0)),  # two: each NaN row would be a bin of its own
    ],
    ids=["one-column", "two-columns"],
)
def test_non_finite_custom_bin_keys_are_refused_naming_env_and_step(key_fn):
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = GPG("MlpPolicy", env, n_steps=8, batch_size=16, binning=key_fn, seed=0)
    # Flat step 7 of a rollout of 2 envs is env 1 at rollout step 3.
    with pytest.raises(ValueError, match=r"The 'custom' binning gave the bin key .*nan.* for env 1 at rollout step 3"):
        model.learn(16)


@pytest.mark.parametrize("binning", ["space", "space_time"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e30])
def test_spatial_binning_refuses_observations_it_cannot_bin(binning, bad):
    space = spaces.Box(-np.inf, np.inf, (3,))
    observations = np.zeros((8, 3), dtype=np.float32)
    observations[5, 2] = bad
    with pytest.raises(ValueError, match=rf"The '{binning}' binning gave the bin key .* for env 1 at rollout step 2"):
        make_binning(binning, space, 0.1)(observations, np.arange(8), n_envs=2)


# --- Failure 3: non-finite observations and rewards ---


class CorruptingWrapper(gym.Wrapper):
    """Returns a NaN reward or observation at one step."""

    def __init__(self, env, bad_step, what):
        super().__init__(env)
        self.bad_step, self.what, self.steps = bad_step, what, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        if self.steps == self.bad_step:
            if self.what == "reward":
                reward = np.nan
            else:
                obs = np.full_like(obs, np.nan)
        return obs, reward, terminated, truncated, info


@pytest.mark.parametrize(
    "what,match",
    [
        ("reward", r"Env 2 returned reward nan at rollout step 4 \(num_timesteps=15\)"),
        ("observation", r"Env 2 returned observation array\(\[nan, nan, nan\].* at rollout step 5 \(num_timesteps=15\)"),
    ],
)
def test_non_finite_step_results_name_env_and_step_and_are_not_trained_on(what, match):
    env = make_vec_env("Pendulum-v1", n_envs=3, seed=0)
    env.envs[2] = CorruptingWrapper(env.envs[2], bad_step=5, what=what)
    model = GPG("MlpPolicy", env, n_steps=16, batch_size=48, seed=0)
    before = [p.detach().clone() for p in model.policy.parameters()]
    with pytest.raises(ValueError, match=match):
        model.learn(48)
    for old, new in zip(before, model.policy.parameters(), strict=True):
        assert np.array_equal(old.numpy(), new.detach().numpy()), f"trained on a rollout with a NaN {what}"


# --- Failure 1: schedules outside [0, 1] with complete-episode rollouts ---


def test_schedules_never_go_below_zero_when_episodes_overshoot_the_budget():
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0)
    model = GPG(
        "MlpPolicy",
        env,
        n_steps=64,
        batch_size=64,
        n_epochs=1,
        learning_rate=lambda progress: 2.5e-3 * progress,
        clip_range=lambda progress: 0.2 * progress,
        collection="episodes",
        seed=0,
    )
    records = recorded(model)
    model.learn(1000)
    assert model.num_timesteps > 1000  # the last complete-episode rollout overshot the budget
    records.append(model.logger.name_to_value)  # the last update's figures, not dumped yet
    learning_rates = [record["train/learning_rate"] for record in records if "train/learning_rate" in record]
    assert len(learning_rates) >= 2 and min(learning_rates) >= 0.0
    assert learning_rates[-1] == 0.0  # progress clamped at 0 for the update after the overshooting rollout
    assert min(record["train/clip_range"] for record in records if "train/clip_range" in record) >= 0.0
    assert 0.0 <= model._current_progress_remaining <= 1.0
    # The steps reported are the env steps taken, the envs' idle steps included.
    assert records[-2]["time/total_timesteps"] == model.num_timesteps


# --- Failure 4: a group without signal is logged and explained ---


def test_group_with_every_step_alone_warns_once_with_remedies_that_apply():
    # One env, one long episode, time binning: each time bin holds one sample, every advantage is zero.
    model = GPG("MlpPolicy", "Pendulum-v1", n_steps=32, batch_size=32, seed=0)
    records = recorded(model)
    with pytest.warns(UserWarning, match="No step of this group carries a learning signal") as record:
        model.learn(96)
    messages = [str(w.message) for w in record if "learning signal" in str(w.message)]
    assert len(messages) == 1
    assert "32 of 32 steps" in messages[0] and "every step sits alone in its bin" in messages[0]
    remedies = messages[0].split("Try ")[1]
    assert "more envs than n_envs=1" in remedies and "min_bin_samples" in remedies
    assert "bin_size" not in remedies and "binning=" not in remedies  # nothing that time binning ignores or already is
    assert np.all(model.rollout_buffer.advantages == 0)
    shares = [record["group/no_signal_share"] for record in records if "group/no_signal_share" in record]
    assert shares == [1.0, 1.0, 1.0]


def test_equal_returns_in_every_bin_warn_with_the_collection_remedy():
    """MountainCar pays -1 per step for 200 steps: with a 32-step window every env of a time bin has the same
    (truncated) return, so nothing is learned; complete episodes would give returns that differ."""
    env = make_vec_env("MountainCar-v0", n_envs=4, seed=0)
    model = GPG("MlpPolicy", env, n_steps=32, batch_size=128, seed=0)
    with pytest.warns(UserWarning, match="No step of this group carries a learning signal") as record:
        model.learn(128)
    (message,) = [str(w.message) for w in record if "learning signal" in str(w.message)]
    assert "the returns in every bin are equal" in message
    remedies = message.split("Try ")[1]
    assert "collection='carry' or 'episodes'" in remedies and "a longer rollout than n_steps=32" in remedies
    assert "sb3_gpg.exploration.VecCountBonus" in remedies  # when no episode reaches the goal, only exploration helps
    assert "sits alone" not in message and "binning=" not in remedies


def test_no_signal_share_is_logged_with_default_options():
    model = GPG("MlpPolicy", make_vec_env("CartPole-v1", n_envs=4, seed=0), n_steps=32, batch_size=64, seed=0)
    records = recorded(model)
    model.learn(128)
    shares = [record["group/no_signal_share"] for record in records if "group/no_signal_share" in record]
    assert len(shares) == 1 and 0.0 <= shares[0] < 1.0


# --- Failure 5: the complete-episode guard and the minibatch warning ---


def test_complete_episodes_wait_for_an_episode_as_long_as_the_time_limit():
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0, env_kwargs=dict(max_episode_steps=999))
    model = GPG("MlpPolicy", env, n_steps=8, batch_size=64, n_epochs=1, collection="episodes", seed=0)
    model.learn(16)  # gave up after 100 * n_steps = 800 steps before
    assert model.rollout_buffer.group_stats.steps == 2 * 999


class EndlessEnv(gym.Env):
    """An env whose episodes never end and that has no time limit."""

    observation_space = spaces.Box(-1, 1, (1,))
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(1, dtype=np.float32), 0.0, False, False, {}


def test_complete_episodes_without_a_time_limit_give_up_and_say_why():
    model = GPG("MlpPolicy", make_vec_env(EndlessEnv, n_envs=2), n_steps=8, batch_size=16, collection="episodes")
    with pytest.raises(RuntimeError, match=r"envs \[0, 1\] have not ended an episode in 10001 steps .* no time limit"):
        model.learn(16)


def test_minibatch_warning_quotes_the_real_group_size():
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    with pytest.warns(UserWarning, match="this group of complete episodes holds") as record:
        model = GPG("MlpPolicy", env, n_steps=30, batch_size=64, n_epochs=1, collection="episodes", seed=0)
        model.learn(60)
    messages = [str(w.message) for w in record if "mini-batch size" in str(w.message)]
    assert not any("n_steps * n_envs" in message for message in messages)  # PPO's check quotes 2 * 30 = 60
    steps = model.rollout_buffer.group_stats.steps
    assert f"holds {steps} steps" in messages[0] and f"truncated mini-batch of size {steps % 64}" in messages[0]


# --- Failure 6: from_ppo onto another observation space ---


def test_from_ppo_onto_another_observation_space_says_so():
    ppo = PPO("MlpPolicy", "CartPole-v1", n_steps=16, batch_size=16)
    with pytest.raises(ValueError, match=r"trained with the observation space Box\(.*\(4,\).* but the env has Box\(.*\(6,\)"):
        GPG.from_ppo(ppo, make_vec_env("Acrobot-v1", n_envs=1))


# --- Failure 10: approx_kl as PPO logs it ---


def test_approx_kl_is_the_last_epochs_mean_as_in_ppo():
    kls_per_epoch: list[list[float]] = []

    class Recording(GPG):
        def _evaluate_actions(self, rollout_data, actions):
            log_prob, entropy = super()._evaluate_actions(rollout_data, actions)
            log_ratio = (log_prob - rollout_data.old_log_prob).detach()
            kls_per_epoch[-1].append(th.mean(th.exp(log_ratio) - 1 - log_ratio).item())
            return log_prob, entropy

    model = Recording("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=16, n_epochs=3, learning_rate=1e-2, seed=0)
    get = model.rollout_buffer.get

    def get_per_epoch(batch_size):
        kls_per_epoch.append([])
        return get(batch_size)

    model.rollout_buffer.get = get_per_epoch
    records = recorded(model)
    model.learn(64)
    assert len(kls_per_epoch) == 3
    logged = {**(records[-1] if records else {}), **model.logger.name_to_value}["train/approx_kl"]
    assert logged == pytest.approx(np.mean(kls_per_epoch[-1]), rel=1e-5)
    assert logged != pytest.approx(np.mean(np.concatenate(kls_per_epoch)), rel=1e-3)

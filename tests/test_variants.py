"""GPG's estimator and loss variants: passed to the buffer, saved with the model, and the losses they define."""

import warnings

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from sb3_gpg import GPG
from sb3_gpg.arguments import ArgumentError
from sb3_gpg.estimator import EstimatorConfig, group_advantages
from tests.recording import recorded

VARIANT_OPTIONS = dict(
    baseline="leave_one_out",
    advantage_scale="bin_std",
    min_bin_samples=3,
    bin_fallback="shrink",
    history_weight=0.5,
    signal_rescale=True,
    objective="pg",
)


@pytest.mark.parametrize(
    "options",
    [
        dict(baseline="leave_one_out"),
        dict(advantage_scale="bin_std"),
        dict(min_bin_samples=3, bin_fallback="replace"),
        dict(min_bin_samples=2, bin_fallback="shrink", baseline="leave_one_out", advantage_scale="bin_std"),
    ],
)
def test_buffer_advantages_are_the_estimator_variant(options):
    """Space-time binning falls back on time, then on the universal bin: the buffer passes both levels."""
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0)
    model = GPG(
        "MlpPolicy", env, n_steps=40, batch_size=160, n_epochs=1, binning="space_time", bin_size=0.5, seed=0, **options
    )
    model.learn(160)
    buffer = model.rollout_buffer
    rows = buffer.pos
    observations = buffer.observations[:rows]
    times = buffer.episode_times[:rows]
    space_time = np.concatenate((np.floor(observations / 0.5 + 0.5), times[..., None]), axis=-1)
    expected = group_advantages(
        buffer.rewards[:rows],
        buffer.episode_starts[:rows],
        space_time,
        model.gamma,
        config=EstimatorConfig(**options),
        coarse_keys=[(times, True), (np.zeros_like(times), False)],
    )
    np.testing.assert_allclose(buffer.advantages[:rows], expected.advantages, rtol=1e-5, atol=1e-5)
    assert buffer.group_stats.fallback_share == pytest.approx(expected.stats.fallback_share)
    if "min_bin_samples" in options:
        assert 0 < buffer.group_stats.fallback_share < 1


def test_options_are_saved_and_loaded(tmp_path):
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = GPG("MlpPolicy", env, n_steps=32, batch_size=32, seed=0, binning="space_time", **VARIANT_OPTIONS)
    model.learn(64)
    model.save(tmp_path / "gpg")
    loaded = GPG.load(tmp_path / "gpg", env=env)
    for name, value in VARIANT_OPTIONS.items():
        assert getattr(loaded, name) == value
    assert loaded.rollout_buffer.estimator == EstimatorConfig("leave_one_out", "bin_std", 3, "shrink", 0.5)
    loaded.learn(64, reset_num_timesteps=False)
    assert loaded.rollout_buffer.group_stats is not None


def test_defaults_are_algorithm2_and_ppo_loss():
    model = GPG("MlpPolicy", "CartPole-v1")
    assert (model.baseline, model.advantage_scale, model.min_bin_samples, model.bin_fallback) == ("mean", "none", 0, "replace")
    assert (model.signal_rescale, model.objective) == (False, "clip")
    assert model.rollout_buffer.estimator == EstimatorConfig()


@pytest.mark.parametrize(
    "option,value,match",
    [
        ("baseline", "loo", r"Unknown baseline='loo': valid values are 'mean', 'leave_one_out'"),
        ("advantage_scale", "std", r"Unknown advantage_scale='std': valid values are 'none', 'bin_std'"),
        ("bin_fallback", "time", r"Unknown bin_fallback='time': valid values are 'replace', 'shrink'"),
        ("min_bin_samples", -2, r"min_bin_samples=-2 must be an integer >= 0"),
        ("objective", "ppo", r"Unknown objective='ppo': valid values are 'clip', 'pg'"),
        ("signal_rescale", "yes", r"signal_rescale='yes' must be True or False"),
    ],
)
def test_bad_variant_options(option, value, match):
    with pytest.raises(ArgumentError, match=match) as error:
        GPG("MlpPolicy", "CartPole-v1", **{option: value})
    assert error.value.argument == option


def test_pg_objective_is_the_plain_policy_gradient_and_clip_is_not():
    advantages = th.tensor([1.0, -2.0, 0.5, 3.0])
    model = GPG("MlpPolicy", "CartPole-v1")

    def gradient(objective, log_ratio):
        """Gradient of the policy loss with respect to log pi at the given log ratio to the rollout policy."""
        model.objective = objective
        log_prob = th.full((4,), log_ratio, requires_grad=True)
        ratio = th.exp(log_prob - 0.0)
        return th.autograd.grad(model._policy_loss(advantages, ratio, 0.2), log_prob)[0].numpy()

    # First epoch: ratio = 1, the gradient is the policy gradient estimate -A / n for both objectives.
    np.testing.assert_allclose(gradient("pg", 0.0), -advantages.numpy() / 4)
    np.testing.assert_allclose(gradient("clip", 0.0), -advantages.numpy() / 4)
    # Ratio 1.5 (past the clip range): the clipped surrogate stops the positive advantages, "pg" does not.
    np.testing.assert_allclose(gradient("pg", np.log(1.5)), -advantages.numpy() * 1.5 / 4, rtol=1e-6)
    np.testing.assert_allclose(gradient("clip", np.log(1.5)), [0.0, 2.0 * 1.5 / 4, 0.0, 0.0], rtol=1e-6)


def test_signal_normalization_keeps_no_signal_steps_at_zero():
    model = GPG("MlpPolicy", "CartPole-v1", signal_rescale=True)
    advantages = th.tensor([0.0, 1.0, 0.0, 3.0, -2.0, 0.0])
    normalized = model._minibatch_advantages(advantages)
    assert th.all(normalized[[0, 2, 5]] == 0)
    signal = normalized[[1, 3, 4]]
    assert signal.mean().item() == pytest.approx(0, abs=1e-6)
    assert signal.std().item() == pytest.approx(1, rel=1e-6)
    single = th.tensor([0.0, 2.0, 0.0])
    assert th.equal(model._minibatch_advantages(single), single)


def test_signal_rescale_makes_the_loss_a_mean_over_steps_with_signal():
    """One epoch, one minibatch (the whole group), no normalization: the ratio is 1 and the policy loss is
    -sum(A) / N * N / (N - N_zero), the mean advantage of the steps that carry signal. (Spatial bins: revisits
    make the sum of advantages nonzero, and fine cells leave many steps alone in their bin.)"""
    env = make_vec_env("CartPole-v1", n_envs=4, seed=1)
    model = GPG(
        "MlpPolicy",
        env,
        n_steps=64,
        batch_size=256,
        n_epochs=1,
        normalize_advantage=False,
        binning="space",
        bin_size=0.2,
        signal_rescale=True,
        seed=1,
    )
    records = recorded(model)
    model.learn(256)  # one rollout: its group figures are dumped before train(), whose figures stay pending
    logged = {**records[-1], **model.logger.name_to_value}
    advantages = model.rollout_buffer.advantages[: model.rollout_buffer.pos]
    share = model.rollout_buffer.group_stats.no_signal_share
    assert 0.1 < share < 0.9
    assert share == pytest.approx(np.mean(advantages == 0))
    assert logged["group/no_signal_share"] == pytest.approx(share)
    signal_mean = advantages[advantages != 0].mean()
    assert abs(signal_mean) > 0.1
    assert logged["train/policy_gradient_loss"] == pytest.approx(-signal_mean, rel=1e-4)


def test_fallback_gives_a_lonely_group_signal_and_no_warning():
    # One env, one long episode, time binning: every bin holds one sample (see test_errors), but the universal
    # bin holds the whole trajectory.
    model = GPG("MlpPolicy", "Pendulum-v1", n_steps=32, batch_size=32, seed=0, min_bin_samples=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.learn(64)
    assert model.rollout_buffer.group_stats.fallback_share == 1.0
    assert np.any(model.rollout_buffer.advantages != 0)


def test_history_gives_a_single_env_a_signal():
    """One env and time bins: alone in every bin, nothing to learn from; the bins' history gives each step a
    baseline from the earlier rollouts' returns."""
    alone = GPG("MlpPolicy", "Pendulum-v1", n_steps=200, batch_size=200, n_epochs=1, seed=0)
    with pytest.warns(UserWarning, match="No step of this group carries a learning signal"):
        alone.learn(400)
    model = GPG("MlpPolicy", "Pendulum-v1", n_steps=200, batch_size=200, n_epochs=1, history_weight=0.9, seed=0)
    records = recorded(model)
    model.learn(600)
    shares = [record["group/no_signal_share"] for record in records if "group/no_signal_share" in record]
    assert shares[0] == 1.0 and max(shares[1:]) == 0.0  # from the second rollout on, every step has a baseline
    assert model.rollout_buffer.history.counts.max() == pytest.approx(1 + 0.9 + 0.81)

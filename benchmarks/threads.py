"""Torch intra-op threads against a busy core: GPG on CartPole with 1 thread and with torch's default.

A second process spins on one core for the whole measurement (as a test worker or another run would).

    python -m benchmarks.threads
"""

from __future__ import annotations

import multiprocessing as mp
import time


def spin() -> None:
    while True:
        pass


def steps_per_second(threads: int, timesteps: int = 8_192) -> float:
    import torch as th
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_gpg import GPG

    th.set_num_threads(threads)
    model = GPG("MlpPolicy", make_vec_env("CartPole-v1", n_envs=8, seed=0), n_steps=128, batch_size=256, n_epochs=4, seed=0)
    model.learn(1_024)
    start = time.perf_counter()
    model.learn(timesteps, reset_num_timesteps=False)
    return timesteps / (time.perf_counter() - start)


def main() -> None:
    import torch as th

    default = th.get_num_threads()
    busy = mp.get_context("spawn").Process(target=spin, daemon=True)
    busy.start()
    try:
        for threads in sorted({1, default}):
            print(f"{threads} thread(s), one other core busy: {steps_per_second(threads):,.0f} env steps/s", flush=True)
    finally:
        busy.terminate()


if __name__ == "__main__":
    main()

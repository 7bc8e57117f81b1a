#!/usr/bin/env python3
"""Set up sb3-gpg in its own virtual environment, then run the main job or the test suite.

    python3 scripts/bootstrap.py demo   # train GPG on CartPole-v1 with the RL Zoo command line, report the score
    python3 scripts/bootstrap.py test   # run the test suite

Needs nothing but Python >= 3.10. Extra arguments go to pytest (``test``) or to ``sb3-gpg train`` (``demo``).

Environment variables:
    SB3_GPG_VENV   where the virtual environment goes (default: .venv in the repository)
    SB3_GPG_TORCH  the pip arguments that install torch, e.g.
                   "torch --index-url https://download.pytorch.org/whl/cu124" for a CUDA 12.4 build.
                   Default: a CPU build on machines without an NVIDIA GPU (the usual PyPI build, which bundles
                   several GB of CUDA libraries, only where there is a GPU to use them).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("SB3_GPG_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
EXTRAS = {"demo": "box2d", "test": "tests"}
DEMO_ENV = "CartPole-v1"
DEMO_LOGS = ROOT / "logs" / "demo"


def say(message: str) -> None:
    print(f"[sb3-gpg] {message}", flush=True)


def run(*args: str | Path, check: bool = True, quiet: bool = False) -> int:
    output = subprocess.DEVNULL if quiet else None
    return subprocess.run([str(a) for a in args], cwd=ROOT, check=check, stdout=output, stderr=output).returncode


def pip(*args: str, check: bool = True) -> int:
    return run(PYTHON, "-m", "pip", "install", "--disable-pip-version-check", *args, check=check)


def has_torch() -> bool:
    return run(PYTHON, "-c", "import torch", check=False, quiet=True) == 0


def install_torch() -> None:
    """Install torch unless the venv has one: the user's choice, a CUDA build with a GPU, else a CPU build."""
    if has_torch():
        return
    user_choice = os.environ.get("SB3_GPG_TORCH")
    if user_choice:
        say(f"installing torch as SB3_GPG_TORCH asks: pip install {user_choice}")
        pip(*shlex.split(user_choice))
        return
    if shutil.which("nvidia-smi"):
        say("NVIDIA GPU found: installing the default (CUDA) torch build from PyPI")
        pip("torch")
        return
    # CPU only. First a torch wheel pip can already see locally (its find-links), then PyTorch's CPU index;
    # its dependencies come with the package install below.
    say("no GPU: installing a CPU build of torch")
    if pip("--no-index", "--no-deps", "torch", check=False) == 0:
        return
    if pip("--no-deps", "torch", "--index-url", "https://download.pytorch.org/whl/cpu", check=False) == 0:
        return
    say("no CPU build of torch could be found: falling back to PyPI's default build (large download)")
    pip("torch")


def install(extra: str) -> None:
    if not PYTHON.exists():
        say(f"creating the virtual environment {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    # Reinstall only when the package metadata changed since the last install into this venv.
    stamp = VENV / f".sb3-gpg-{extra}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and has_torch():
        return
    install_torch()
    say(f"installing sb3-gpg[{extra}] and its dependencies")
    pip("--quiet", "-e", f".[{extra}]")
    stamp.write_text(digest)


def demo(args: list[str]) -> None:
    install(EXTRAS["demo"])
    cli = BIN / "sb3-gpg"
    # One torch thread: a 64-64 MLP runs fastest so, and torch's default threads slow it down when another
    # process keeps a core busy (benchmarks/threads.py).
    common = ["--algo", "gpg", "--env", DEMO_ENV, "-f", DEMO_LOGS, "--num-threads", "1"]
    say(f"training GPG on {DEMO_ENV} with the RL Zoo command line (hyperparams/gpg.yml)")
    run(cli, "train", *common, "--seed", "0", "--eval-freq", "-1", *args)
    say("evaluating the trained agent: deterministic policy for 5000 steps (at least 10 episodes)")
    run(cli, "enjoy", *common, "--exp-id", "0", "--no-render", "--deterministic", "-n", "5000", "--seed", "1")
    say(f"model and logs: {DEMO_LOGS}/gpg (load it with sb3_gpg.GPG.load)")


def test(args: list[str]) -> None:
    install(EXTRAS["test"])
    workers = ["-n", "2"] if os.cpu_count() and os.cpu_count() > 1 else []
    sys.exit(run(PYTHON, "-m", "pytest", *workers, *args, check=False))


def main() -> None:
    commands = {"demo": demo, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python3 {Path(__file__).name} {{{','.join(commands)}}} [arguments]\n\n{__doc__}")
    commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()

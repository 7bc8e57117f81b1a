"""sb3-gpg: Group Policy Gradient (arXiv 2510.03679) for Stable-Baselines3."""

from importlib.resources import files

from sb3_gpg.buffers import GroupDictRolloutBuffer, GroupRolloutBuffer
from sb3_gpg.gpg import GPG
from sb3_gpg.maskable import MaskableGPG

__version__ = files("sb3_gpg").joinpath("version.txt").read_text().strip()

__all__ = ["GPG", "GroupDictRolloutBuffer", "GroupRolloutBuffer", "MaskableGPG", "__version__"]

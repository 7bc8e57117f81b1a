"""The RL Zoo hyperparameter files of sb3-gpg (installed as ``sb3_gpg.hyperparams``; see ``sb3_gpg.zoo``)."""

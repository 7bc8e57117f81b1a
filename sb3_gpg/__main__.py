"""``python -m sb3_gpg COMMAND ...``: the ``sb3-gpg`` command line (see :mod:`sb3_gpg.cli`)."""

import sys

from sb3_gpg.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m ember``: the ``ember`` command, for environments whose scripts folder is not on
the PATH (``python -m ember plugins`` is ``ember plugins``).

Example:
    >>> # python -m ember serve model.ember --port 8080
"""

import sys

from ember.cli import main

if __name__ == "__main__":
    sys.exit(main())

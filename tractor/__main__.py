"""``python -m tractor``: the command line (see :mod:`tractor._cli`)."""
import sys

from ._cli import main

if __name__ == '__main__':
    sys.exit(main())

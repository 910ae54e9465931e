"""``python -m fairmoe.data.synthetic``: see ``fairmoe.data.synthetic.cli``."""

from __future__ import annotations

import sys

from fairmoe.data.synthetic.cli import main

if __name__ == "__main__":
    sys.exit(main())

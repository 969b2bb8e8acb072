"""``python -m sitechat`` is ``sitechat``."""

from __future__ import annotations

import sys

from sitechat.cli import main

if __name__ == "__main__":
    sys.exit(main())

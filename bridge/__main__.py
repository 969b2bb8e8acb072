"""``python -m bridge`` is ``sitechat``."""

from __future__ import annotations

import sys

from bridge.cli.main import main

if __name__ == "__main__":
    sys.exit(main())

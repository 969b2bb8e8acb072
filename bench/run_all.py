"""``make bench``: every benchmark, one after the other, and one table of their figures at the end
(figure, target, measured, met). ``--tiny`` runs each at its tiny size (seconds; nothing is judged).

Run: .venv/bin/python bench/run_all.py [--tiny]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import PREFIX  # noqa: E402

#: (script, arguments at full size) — ratios measured in one run, never asserted as timings
BENCHMARKS: list[tuple[str, list[str]]] = [
    ("cpu_per_message.py", []),
    ("relay_ceiling.py", []),
    ("matrix_ceiling.py", []),
    ("reply_latency.py", []),
    ("slack_combining.py", []),
    ("idle_sockets.py", ["10000"]),
    ("upload_memory.py", ["100"]),
]


def main(tiny: bool) -> int:
    rows: list[list[str]] = []
    failed = []
    for script, full in BENCHMARKS:
        print(f"== bench/{script}", flush=True)
        run = subprocess.run(
            [sys.executable, str(ROOT / "bench" / script), *(["--tiny"] if tiny else full)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        print(run.stdout, end="", flush=True)
        found = [line[len(PREFIX) :].split(" | ") for line in run.stdout.splitlines() if line.startswith(PREFIX)]
        if run.returncode != 0 or not found:
            failed.append(script)
            rows.append([f"{script}: did not finish", "", "", "FAILED"])
        rows.extend(found)
    header = ["figure", "target", "measured", "met"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print()
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main("--tiny" in sys.argv))

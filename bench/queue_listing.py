"""A page of a huge mail queue: time and memory of listing it from `postqueue -j` output.

Writes --messages lines in postqueue -j's format (arrival times shuffled, as a queue directory
scan returns them) to a file once, then, each in a fresh process, runs through this machine's
LocalRunner (`cat FILE` standing in for `postqueue -j`, which prints the same bytes):

  - held:     `run` (the whole output in memory), then parse and keep the oldest page of 50
  - streamed: `stream` (chunks as they arrive), the same parse and page

and prints the wall time and the process's peak resident memory of each. The page must be the
same both ways.

    .venv/bin/python bench/queue_listing.py [--messages 1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILE = Path("/var/tmp/mailwarden-bench")


def write_queue(path: Path, messages: int) -> None:
    rng = random.Random(7)
    arrivals = list(range(1_700_000_000, 1_700_000_000 + messages))
    rng.shuffle(arrivals)
    with path.open("w") as out:
        for number, arrival in enumerate(arrivals):
            record = {
                "queue_name": "deferred",
                "queue_id": f"{number:010X}",
                "arrival_time": arrival,
                "message_size": 2000 + number % 50_000,
                "forced_expire": False,
                "sender": f"newsletter{number % 977}@bulk{number % 31}.example",
                "recipients": [
                    {
                        "address": f"user{number % 99_991}@dest{number % 211}.example",
                        "delay_reason": "connect to mx.dest.example[192.0.2.7]:25: "
                        "Connection timed out",
                    }
                ],
            }
            out.write(json.dumps(record) + "\n")


# Runs in a child process, so each way's peak memory is its own.
CHILD = """
import resource, sys, time
from mailwarden.stack.hosts.local import LocalRunner
from mailwarden.stack.postfix.queue import QueueFilter, parse_queue, select_page, stream_lines

way, path = sys.argv[1], sys.argv[2]
runner = LocalRunner("bench")
started = time.perf_counter()
if way == "held":
    output = runner.run(["cat", path], timeout=600).checked().stdout
    lines = stream_lines([output])
else:
    lines = stream_lines(runner.stream(["cat", path], timeout=600))
page, more = select_page(parse_queue(lines), QueueFilter(), limit=50, after=None)
elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(elapsed, peak, page[0].queue_id, page[-1].queue_id, more)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    DEFAULT_FILE.mkdir(parents=True, exist_ok=True)
    path = DEFAULT_FILE / f"postqueue-{args.messages}.jsonl"
    if not path.exists():
        print(f"writing {args.messages:,} queue entries to {path} ...", flush=True)
        write_queue(path, args.messages)
    size = path.stat().st_size
    print(f"postqueue -j output: {args.messages:,} messages, {size / 2**20:.0f} MiB")
    pages = set()
    print(f"{'':10} {'wall s':>8} {'peak MB':>8}")
    for way in ("held", "streamed"):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, way, str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        elapsed, peak, first, last, more = done.stdout.split()
        pages.add((first, last, more))
        print(f"{way:10} {float(elapsed):8.2f} {int(peak) / 1e6:8.0f}")
    print("same page both ways" if len(pages) == 1 else f"PAGES DIFFER: {pages}")


if __name__ == "__main__":
    main()

"""`mailwarden logs summary` against Debian's pflogsumm on one big mail log.

Generates (once; then reused) a realistic Postfix + Dovecot log of --size bytes with
tests/support/maillog_generator.py at --log, then runs `pflogsumm LOG` and
`mailwarden logs summary LOG --json`, one after the other, and prints for each the wall time,
the throughput, the CPU time and the peak memory (the sum of the resident sizes of the command
and all its child processes, sampled every 20 ms), the speed-up, and whether the grand totals
agree (as pflogsumm prints them: counts over 512 Ki in k, over 512 Mi in m).

    .venv/bin/python bench/log_summary.py [--size 1G] [--log /var/tmp/mailwarden-bench/mail-1G.log]

The target of the issue: at least 5x pflogsumm's speed using both cores, with no more memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.unit.logs.pflogsumm import GRAND_TOTALS, parse, shown

GENERATOR = Path(__file__).resolve().parent.parent / "tests" / "support" / "maillog_generator.py"
# The generated log starts on 2024-03-01: a modification time a few days later gives its
# year-less stamps the year 2024.
WRITTEN = datetime(2024, 3, 5, 12, 0).timestamp()


@dataclass
class Run:
    name: str
    wall: float
    cpu: float
    peak_rss: int  # bytes, summed over the process tree
    stdout: bytes


def _children(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(name: str, argv: list[str]) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak = 0
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(process.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    while process.poll() is None:
        peak = max(peak, sum(_rss(pid) for pid in _children(process.pid)))
        time.sleep(0.02)
    reader.join()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise SystemExit(f"{name} failed with exit status {process.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(name, wall, cpu, peak, b"".join(chunks))


def ensure_log(path: Path, size: str, seed: int, days: float) -> None:
    if path.exists():
        print(f"reusing {path} ({path.stat().st_size / 2**20:.0f} MiB)")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"generating {path} ({size}); this takes a while ...", flush=True)
    partial = path.with_name(path.name + ".partial")
    argv = [sys.executable, str(GENERATOR), "--size", size, "--seed", str(seed)]
    argv += ["--days", str(days), "-o", str(partial), "--truth", f"{path}.truth.json"]
    subprocess.run(argv, check=True)
    partial.rename(path)
    os.utime(path, (WRITTEN, WRITTEN))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1G", help="size of the generated log (default 1G)")
    parser.add_argument("--log", type=Path, help="the log (generated when missing)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--workers", type=int, help="mailwarden's --workers (default: CPUs)")
    args = parser.parse_args()
    log = args.log or Path("/var/tmp/mailwarden-bench") / f"mail-{args.size}.log"
    ensure_log(log, args.size, args.seed, args.days)
    pflogsumm = shutil.which("pflogsumm") or "/usr/sbin/pflogsumm"
    mailwarden = shutil.which("mailwarden", path=str(Path(sys.executable).parent)) or "mailwarden"
    ours_argv = [mailwarden, "logs", "summary", str(log), "--json"]
    if args.workers:
        ours_argv += ["--workers", str(args.workers)]

    theirs = measure("pflogsumm", [pflogsumm, str(log)])
    ours = measure("mailwarden", ours_argv)

    mib = log.stat().st_size / 2**20
    print(f"\n{'':12} {'wall s':>8} {'MiB/s':>8} {'CPU s':>8} {'peak MB':>8}")
    for run in (theirs, ours):
        print(
            f"{run.name:12} {run.wall:8.2f} {mib / run.wall:8.1f} {run.cpu:8.2f} "
            f"{run.peak_rss / 1e6:8.0f}"
        )
    print(f"\nspeed-up (wall): {theirs.wall / ours.wall:.2f}x")
    print(f"CPU time ratio: {theirs.cpu / ours.cpu:.2f}x (pflogsumm's CPU s / ours)")
    print(f"memory: {ours.peak_rss / theirs.peak_rss:.2f}x pflogsumm's peak")
    print(f"CPUs: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")

    report = parse(theirs.stdout.decode("utf-8", "backslashreplace"))
    totals: dict[str, Any] = json.loads(ours.stdout)["totals"]
    disagree = [
        f"{key}: pflogsumm {report.totals[key]} mailwarden {totals[key]}"
        for key in GRAND_TOTALS
        if key in report.totals and report.totals[key] != shown(totals[key])
    ]
    print("grand totals agree" if not disagree else "DISAGREE:\n  " + "\n  ".join(disagree))
    truth_path = Path(f"{log}.truth.json")
    if truth_path.exists():
        truth = json.loads(truth_path.read_text())
        wrong = [key for key in GRAND_TOTALS if truth.get(key) != totals[key]]
        print("ground truth agrees" if not wrong else f"ground truth DISAGREES on {wrong}")
    if disagree:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

"""Hashing speed of mailwarden.kernel.passwords next to Dovecot's own `doveadm pw`.

    .venv/bin/python bench/password_hashing.py [--seconds S]

Everything runs sequentially. doveadm can only be timed as a whole process, so its raw figure
includes exec and configuration parsing; the start-up cost is measured separately with the PLAIN
scheme (no hashing) and two start-up-free estimates are derived from it.

By default the figures are per CPU-second (user + system time of this process, or of the doveadm
children), which stays comparable on a shared, busy machine; --clock wall uses elapsed time.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from mailwarden.kernel.passwords import WRITABLE_SCHEMES, Scheme, hash_password, verify_password

PASSWORD = "bench-Pässwörd-42"

# doveadm -r values that make one hash cost K times the default one (cost is linear in rounds
# for these schemes; bcrypt's cost is log2 of the rounds). Argon2's -r also raises memory along
# libsodium's presets, so it has no linear scale and only gets the PLAIN-subtracted estimate.
SCALED_ROUNDS: dict[Scheme, tuple[str, float]] = {
    Scheme.SHA512_CRYPT: ("500000", 100.0),
    Scheme.SHA256_CRYPT: ("500000", 100.0),
    Scheme.PBKDF2: ("500000", 100.0),
    Scheme.BLF_CRYPT: ("12", 2.0**7),
}


@dataclass(frozen=True)
class Timing:
    runs: int
    total: float
    samples: list[float]

    @property
    def rate(self) -> float:
        return self.runs / self.total

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


Clock = Callable[[], float]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_calls(
    call: Callable[[], object], clock: Clock, seconds: float, minimum: int = 3
) -> Timing:
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < minimum or time.perf_counter() - started < seconds:
        before = clock()
        call()
        samples.append(clock() - before)
    return Timing(len(samples), sum(samples), samples)


def parameters(stored: str) -> str:
    """The cost part of a hash, to show when doveadm's defaults differ from ours."""
    if match := re.search(r"\$(m=\d+,t=\d+,p=\d+)\$", stored):
        return match[1]
    if match := re.match(r"\{BLF-CRYPT\}\$2.\$(\d+)\$", stored):
        return f"cost {match[1]}"
    if match := re.match(r"\{PBKDF2\}\$1\$[^$]*\$(\d+)\$", stored):
        return f"{match[1]} rounds"
    match = re.search(r"\$rounds=(\d+)\$", stored)
    return f"{match[1] if match else 5000} rounds"


def doveadm_call(doveadm: str, scheme: str, *extra: str) -> Callable[[], str]:
    def call() -> str:
        result = subprocess.run(
            [doveadm, "pw", "-s", scheme, *extra, "-p", PASSWORD],
            capture_output=True,
            text=True,
            check=True,
        )
        # Guard against timing an error path (doveadm prints "{SCHEME}*0" on libxcrypt errors).
        if not result.stdout.startswith(f"{{{scheme}}}") or "*0" in result.stdout:
            raise RuntimeError(f"unexpected doveadm output: {result.stdout!r}")
        return result.stdout.strip()

    return call


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--seconds", type=float, default=1.0, help="time spent per measurement (default 1.0)"
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: user+system CPU time (default); wall: elapsed time",
    )
    args = parser.parse_args()
    seconds: float = args.seconds
    wall = args.clock == "wall"
    own_clock: Clock = time.perf_counter if wall else time.process_time
    child_clock: Clock = time.perf_counter if wall else children_cpu
    unit = "elapsed" if wall else "CPU"

    doveadm = shutil.which("doveadm")
    dovecot = shutil.which("dovecot")
    dovecot_version = "not installed" if doveadm is None else "version unknown"
    if doveadm is not None and dovecot is not None:
        dovecot_version = subprocess.run(
            [dovecot, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()

    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"Dovecot {dovecot_version}; {seconds:g} s per measurement; password of "
        f"{len(PASSWORD)} characters / {len(PASSWORD.encode())} UTF-8 bytes"
    )
    print(f"All rates are per second of {unit} time (--clock {args.clock}).")
    print()

    startup: Timing | None = None
    if doveadm is not None:
        startup = time_calls(doveadm_call(doveadm, "PLAIN"), child_clock, seconds)
        quartiles = statistics.quantiles(startup.samples, n=4)
        print(
            f"doveadm process start-up (`doveadm pw -s PLAIN`, no hashing): median "
            f"{startup.median * 1000:.2f} ms, quartiles {quartiles[0] * 1000:.2f}-"
            f"{quartiles[2] * 1000:.2f} ms, {startup.rate:,.0f} processes/s"
        )
        print()

    header = (
        "scheme",
        "mailwarden hash/s",
        "mailwarden verify/s",
        "doveadm proc/s",
        "doveadm est. A",
        "doveadm est. B",
    )
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for scheme in sorted(WRITABLE_SCHEMES):
        ours = time_calls(partial(hash_password, PASSWORD, scheme), own_clock, seconds)
        stored = hash_password(PASSWORD, scheme)
        verified = time_calls(partial(verify_password, PASSWORD, stored), own_clock, seconds)
        raw: float | None = None
        estimate_a: float | None = None
        estimate_b: float | None = None
        if doveadm is not None and startup is not None:
            theirs_stored = doveadm_call(doveadm, scheme.value)()
            if parameters(theirs_stored) != parameters(stored):
                notes.append(
                    f"{scheme.value}: doveadm's default is {parameters(theirs_stored)}, "
                    f"mailwarden writes {parameters(stored)}; the figures are not like for like"
                )
            theirs = time_calls(doveadm_call(doveadm, scheme.value), child_clock, seconds)
            raw = theirs.rate
            net = theirs.median - startup.median
            # Below about a quarter of the start-up time the difference is mostly noise.
            estimate_a = 1 / net if net > startup.median / 4 else None
            if scheme in SCALED_ROUNDS:
                rounds, factor = SCALED_ROUNDS[scheme]
                scaled = time_calls(
                    doveadm_call(doveadm, scheme.value, "-r", rounds), child_clock, seconds
                )
                estimate_b = factor / (scaled.median - startup.median)
        rows.append(
            (
                scheme.value,
                fmt(ours.rate),
                fmt(verified.rate),
                fmt(raw),
                fmt(estimate_a),
                fmt(estimate_b),
            )
        )

    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join(
        cell.ljust(width) if i == 0 else cell.rjust(width)
        for i, (cell, width) in enumerate(zip(header, widths, strict=True))
    )
    print(line)
    print("-" * len(line))
    for row in rows:
        print(
            "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        )
    for note in notes:
        print(f"note: {note}")
    print()
    print("mailwarden hash/s    hash_password() calls per second, in this process (includes salt")
    print("                     generation and the policy checks hash_password applies)")
    print("mailwarden verify/s  verify_password() calls per second on a matching password")
    print("doveadm proc/s       complete `doveadm pw -s SCHEME` processes per second: exec, config")
    print("                     parsing, one hash (no -V self-check), exit. Nothing subtracted.")
    print("doveadm est. A       1 / (median process time - median PLAIN start-up): Dovecot's")
    print("                     in-process hash rate, derived; '-' where the hash costs less than")
    print("                     a quarter of the start-up and the difference is mostly noise")
    print("doveadm est. B       K / (median time with -r at K times the default cost - start-up):")
    print("                     the same rate from a run where hashing dominates; SHA-crypt and")
    print("                     PBKDF2 -r 500000 (K=100), BLF-CRYPT -r 12 (K=128); not for Argon2")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

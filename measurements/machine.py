"""What the measurement scripts here ask of the machine they run on: its CPU's name, how
busy it is (from /proc), and a wait for it to be quiet. Python 3 standard library only.

llama.cpp's threads wait for each other by spinning, so one busy core slows them many
times over on a small machine: the scripts measure only when the rest is quiet, and
record how busy it was.
"""

import os
import platform
import re
import time
from pathlib import Path


def cpu_name():
    """The CPU's model name (/proc/cpuinfo), else what `platform` says, else "cpu"."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def cpu_slug():
    """The CPU's name for result file names: "AMD EPYC" gives "amd-epyc"."""
    return re.sub(r"[^A-Za-z0-9]+", "-", cpu_name()).strip("-").lower()


def loadavg():
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def cpu_jiffies():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user/nice
    return total - idle, total


def proc_jiffies(pid):
    """utime + stime of a process (its threads included), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def busy_cores(seconds):
    """Cores busy on the whole machine over the next `seconds`."""
    a = cpu_jiffies()
    time.sleep(seconds)
    b = cpu_jiffies()
    if a is None or b is None:
        return None
    return (b[0] - a[0]) / os.sysconf("SC_CLK_TCK") / seconds


def wait_quiet(max_busy, timeout, log):
    """Waits (at most `timeout` s) until the machine has been at most `max_busy` cores busy
    for 3 s; returns what was measured last and how long it waited. `log` takes a line."""
    t0 = last_log = time.monotonic()
    while True:
        busy = busy_cores(3)
        waited = time.monotonic() - t0
        if busy is None or busy <= max_busy or waited >= timeout:
            if busy is not None and busy > max_busy:
                log(f"still {busy:.2f} cores busy after {waited:.0f} s: measuring anyway")
            return {"busy_cores_before": None if busy is None else round(busy, 3),
                    "waited_s": round(waited, 1)}
        if waited < 4 or time.monotonic() - last_log >= 60:
            log(f"{busy:.2f} cores busy (> {max_busy}): waiting for a quieter machine ({waited:.0f} s so far)")
            last_log = time.monotonic()

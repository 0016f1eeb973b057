"""The machine a benchmark ran on: CPU model, cores, memory."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe() -> str:
    """E.g. "AMD EPYC (2 cores), 23.5 GiB RAM, Linux 6.1, Python 3.10.13"."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        model = names[0] if names else model
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split("MemTotal:", 1)[1].split()[0])
        memory = f", {kib / 2**20:.1f} GiB RAM"
    return (
        f"{model} ({os.cpu_count()} cores){memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )

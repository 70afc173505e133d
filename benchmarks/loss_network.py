"""Cost of the paper's loss network: converting the Oxford VGG-16 from the pinned wheel, then loading the cache.

``python -m benchmarks.loss_network [--repeats 3]``

Each measurement runs in a fresh child process (so peak memory is that step's own, read from
``ru_maxrss``), against a throw-away cache folder: (1) the first start converts the ONNX file and writes the
cache; (2) later starts load the cache. It prints a Markdown table: wall time, the process's peak resident
memory, its resident memory after the step (measured after ``malloc_trim``, so memory already freed is not
counted: the parsed 65 MB ONNX file must not stay alive, only the 59 MB of conv weights), and the resident
memory before the step (``import torch`` alone) for reference.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

_CHILD = r"""
import gc, json, os, resource, sys, time
import torch  # the baseline every start pays anyway
import perceptual_studio.networks.vgg as vgg

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

before = rss_mb()
started = time.perf_counter()
weights = vgg.resolve_vgg16_weights(use_hub=False, use_torchvision_cache=False, allow_random=False)
seconds = time.perf_counter() - started
gc.collect()
try:  # hand freed heap pages back to the OS, so "after" shows what is still alive, not the allocator's slack
    import ctypes
    ctypes.CDLL("libc.so.6").malloc_trim(0)
except OSError:
    pass
print(json.dumps({"seconds": seconds, "source": weights.source, "identity": weights.identity,
                  "rss_before_mb": before, "rss_after_mb": rss_mb(),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _run(cache: str) -> dict:
    env = {**os.environ, "PERCEPTUAL_CACHE_DIR": cache, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "PERCEPTUAL_LOSS_NETWORK": "caffe"}
    env.pop("PERCEPTUAL_VGG16_WEIGHTS", None)
    done = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            first = _run(cache)  # converts and writes the cache
            later = _run(cache)  # reads the cache
        rows.append((first, later))
    print(f"loss network: `{rows[0][0]['identity']}`; {args.repeats} fresh caches, each step in a fresh process\n")
    print("| step | source | seconds (median) | peak RSS, MB | RSS after, MB | RSS before (torch imported), MB |")
    print("|---|---|---:|---:|---:|---:|")
    for index, label in enumerate(("first start: convert + cache", "later start: load the cache")):
        runs = [pair[index] for pair in rows]
        med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
        print(f"| {label} | `{runs[0]['source'].split(':')[0]}` | {med('seconds'):.2f} | {med('peak_mb'):.0f} | "
              f"{med('rss_after_mb'):.0f} | {med('rss_before_mb'):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

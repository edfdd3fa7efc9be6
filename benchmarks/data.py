"""The decoded-image store: decode time with 1 and 2 workers, and the memory of training processes.

Issue 19's benchmark. It generates seeded image folders (50,000 PNGs at 64x64 and 5,000 JPEGs at
256x256; `--small`: 2,000 and 200), then measures, each in a fresh process:

  decode   loading a folder with an empty cache (decoding it into the store) with 1 and with 2
           worker processes, and loading it again (the store is mapped, nothing decoded);
  train    a few training steps of a tiny convgan, first with an empty cache (this process decodes)
           and then cached, on a tenth of the images and on all of them: the peak RSS must not
           grow with the number of images; then one pass over every image (an epoch), after which
           the mapped pages are resident but shared (RssFile, counted again in each process's RSS,
           split between them in Pss);
  memory   the same steps with the store off (data.cache=false: the images decoded into the
           process's own memory, as every folder was before the store): the RSS that grows;
  ranks    2 ranks under torchrun (gloo, CPU), first with an empty cache (one rank decodes, the
           other waits and maps) and then cached: each rank's peak RSS, and their Pss after each
           read every image.

RSS figures are from /proc/self/status (VmHWM = peak RSS; RssAnon = the process's own memory,
where decoded images lived before the store) and /proc/self/smaps (the store's resident pages,
counted in the RSS of every process that maps them, and their Pss: shared pages divided among
the processes that map them). About 500 MiB of every RSS is Python, torch and its libraries.
The page cache is warm in the cached runs (nothing drops it).

    python benchmarks/data.py            # the issue's sizes: ~20 minutes on 2 idle cores, ~3 GB of disk
    python benchmarks/data.py --small    # a quick check of the script
    python benchmarks/data.py --workdir /tmp/bench --keep   # keep the generated images for a rerun
    python benchmarks/data.py --decode-only   # decode times alone, the median of 3 runs each (~6 min)

Results: benchmarks/results/data/<full|small>[-decode].json and a markdown table (also printed).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "data"
TINY_MODEL = {"latent_dim": 8, "g_widths": [8, 8], "g_strides": [2, 2], "g_kernel": 3,
              "d_widths": [8, 8], "d_kernel": 3}  # the data path is what is measured, not the nets
STEPS, BATCH = 5, 32


@dataclass(frozen=True)
class ImageSet:
    name: str
    n: int
    size: int
    format: str  # PNG or JPEG

    def folder(self, root: Path) -> Path:
        return root / f"{self.name}-{self.format.lower()}"


FULL = [ImageSet("64px-50k", 50_000, 64, "PNG"), ImageSet("256px-5k", 5_000, 256, "JPEG")]
SMALL = [ImageSet("64px-2k", 2_000, 64, "PNG"), ImageSet("256px-200", 200, 256, "JPEG")]


# --------------------------------------------------------------------------------------------
# measuring a process (called inside the measured process)


def memory() -> dict:
    """This process's memory in MiB: peak and current RSS, its own (anonymous) and mapped-file
    parts, and Pss (shared pages divided among their users)."""
    out = {"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # KiB on Linux
    try:
        fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
        for key, name in (("VmHWM", "peak_rss"), ("VmRSS", "rss"), ("RssAnon", "rss_anon"),
                          ("RssFile", "rss_file")):
            out[name] = int(fields[key].split()[0]) / 1024
        fields = dict(line.split(":", 1) for line in open("/proc/self/smaps_rollup") if ":" in line)
        out["pss"] = int(fields["Pss"].split()[0]) / 1024
        out["store_rss"], out["store_pss"] = _store_pages()
    except (OSError, KeyError, ValueError):  # not Linux: the peak from getrusage only
        pass
    return {key: round(value, 1) for key, value in out.items()}


def _store_pages() -> tuple[float, float]:
    """(Rss, Pss) in MiB of this process's mappings of image stores (*.gkimg), from smaps."""
    rss = pss = 0
    in_store = False
    for line in open("/proc/self/smaps"):
        head = line.split(maxsplit=5)
        if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):  # a mapping's first line
            in_store = len(head) == 6 and head[5].strip().endswith(".gkimg")
        elif in_store and head[0] in ("Rss:", "Pss:"):
            if head[0] == "Rss:":
                rss += int(head[1])
            else:
                pss += int(head[1])
    return rss / 1024, pss / 1024


def data_options(args) -> dict:
    options = {"source": args.folder, "size": args.size}
    if args.workers:
        options["workers"] = args.workers
    if args.limit:
        options["limit"] = args.limit
    if args.no_cache:
        options["cache"] = False
    return options


def measure_load(args) -> dict:
    from gankit.config import DataConfig
    from gankit.data import load_dataset

    start = time.perf_counter()
    data = load_dataset(DataConfig(**data_options(args)), progress=False)
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "images": len(data), "memory": memory()}


def measure_train(args) -> dict:
    import torch

    from gankit import train
    from gankit.config import DataConfig
    from gankit.data import load_dataset

    start = time.perf_counter()
    train({"recipe": "convgan", "model": TINY_MODEL, "data": data_options(args), "batch": BATCH,
           "steps": STEPS, "runs_dir": args.runs, "progress": False, "device": "cpu",
           "augment": {"mode": "none"}, "sample_every": 10**6, "checkpoint_every": 10**6,
           "grid_size": 4})
    result = {"seconds": round(time.perf_counter() - start, 2), "memory": memory()}
    gc.collect()  # the run's own mapping of the store, so that pages are not counted twice
    # an epoch: every image read once, as training goes on to do (with the store: shared pages)
    data = load_dataset(DataConfig(**data_options(args)), progress=False)
    for part in torch.arange(len(data)).split(256):
        data.batch(part)
    result["after_epoch"] = memory()
    result["images"] = len(data)
    return result


# --------------------------------------------------------------------------------------------
# driving the measurements (the parent process)


def generate(image_set: ImageSet, root: Path, workers: int) -> float:
    """The seeded images of `image_set` (skipped if already there); seconds taken."""
    folder = image_set.folder(root)
    done = folder / ".complete"
    if done.exists():
        return 0.0
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    chunks = [(image_set, folder, range(i, min(i + 1000, image_set.n))) for i in range(0, image_set.n, 1000)]
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(_write_images, chunks)
    done.touch()
    return time.perf_counter() - start


def _write_images(task) -> None:
    from PIL import Image

    image_set, folder, indices = task
    for i in indices:
        rng = np.random.default_rng(i)
        # smooth colour fields with a little grain: compress and decode like photos, not noise
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        img = Image.fromarray(coarse).resize((image_set.size, image_set.size), Image.Resampling.BICUBIC)
        pixels = np.asarray(img, dtype=np.int16) + rng.integers(-8, 9, img.size[::-1] + (3,))
        img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        sub = folder / f"{i // 1000:03d}"  # 1000 files per folder
        sub.mkdir(exist_ok=True)
        suffix = ".png" if image_set.format == "PNG" else ".jpg"
        img.save(sub / f"{i:06d}{suffix}", image_set.format, **({"quality": 90} if suffix == ".jpg" else {}))


def run_measure(mode: str, folder: Path, size: int, cache: Path, work: Path, *, workers: int = 0,
                limit: int = 0, no_cache: bool = False, ranks: int = 1) -> dict | list[dict]:
    """`mode` ("load" or "train") in a fresh process (or `ranks` processes under torchrun)."""
    out = Path(tempfile.mkdtemp(dir=work, prefix="out-"))
    command = [str(Path(__file__).resolve()), "_" + mode, "--folder", str(folder), "--size", str(size), "--out", str(out),
               "--runs", str(work / "runs"), "--workers", str(workers), "--limit", str(limit)]
    if no_cache:
        command.append("--no-cache")
    if ranks > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc-per-node={ranks}", *command]
    else:
        command = [sys.executable, *command]
    env = {**os.environ, "GANKIT_CACHE": str(cache), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    results = [json.loads(path.read_text()) for path in sorted(out.glob("rank*.json"))]
    shutil.rmtree(out)
    return results if ranks > 1 else results[0]


def store_size(cache: Path) -> float:
    return round(sum(p.stat().st_size for p in (cache / "datasets").glob("*.gkimg")) / 2**20, 1)


def benchmark(image_set: ImageSet, root: Path, work: Path, decode_only: bool = False) -> dict:
    folder = image_set.folder(root)
    fresh = lambda tag: Path(tempfile.mkdtemp(dir=work, prefix=f"cache-{tag}-"))  # noqa: E731
    result: dict = {"images": image_set.n, "size": image_set.size, "format": image_set.format}

    decode = {}
    repeats = 3 if decode_only else 1
    for workers in (1, 2):
        runs = []
        for _ in range(repeats):  # each from an empty cache; the median run is reported
            cache = fresh(f"w{workers}")
            runs.append(run_measure("load", folder, image_set.size, cache, work, workers=workers))
            if workers == 1 or len(runs) < repeats:
                shutil.rmtree(cache)
        runs.sort(key=lambda m: m["seconds"])
        decode[f"first, {workers} worker{'s' * (workers > 1)}"] = {
            **runs[len(runs) // 2], "runs_seconds": [m["seconds"] for m in runs]}
        print(f"  decoded with {workers} worker(s)", flush=True)
    decode["cached"] = run_measure("load", folder, image_set.size, cache, work)
    result["store_mib"] = store_size(cache)
    shutil.rmtree(cache)
    result["decode"] = decode
    if decode_only:
        return result

    train = {}
    for limit in (image_set.n // 10, image_set.n):
        cache = fresh("train")
        train[f"{limit} images, first"] = run_measure("train", folder, image_set.size, cache, work, limit=limit)
        train[f"{limit} images, cached"] = run_measure("train", folder, image_set.size, cache, work, limit=limit)
        shutil.rmtree(cache)
        train[f"{limit} images, in memory (no store)"] = run_measure(
            "train", folder, image_set.size, fresh("memory"), work, limit=limit, no_cache=True)
        print(f"  trained on {limit} images", flush=True)
    result["train"] = train

    cache = fresh("ranks")
    result["ranks"] = {"first": run_measure("train", folder, image_set.size, cache, work, ranks=2),
                       "cached": run_measure("train", folder, image_set.size, cache, work, ranks=2)}
    shutil.rmtree(cache)
    print("  trained on 2 ranks", flush=True)
    return result


def table(results: dict) -> str:
    lines = ["| set | run | seconds | images/s | peak RSS MiB | RssAnon MiB | after an epoch: "
             "RssAnon / store resident / store Pss MiB |", "|---|---|---:|---:|---:|---:|---|"]
    for name, r in results["sets"].items():
        for run, m in r["decode"].items():
            rate = f"{m['images'] / m['seconds']:.0f}" if run.startswith("first") else ""
            runs = m.get("runs_seconds", [])
            seconds = f"{m['seconds']:.2f}" + (f" (runs {', '.join(f'{x:.2f}' for x in runs)})" if len(runs) > 1 else "")
            lines.append(f"| {name} | decode {run} | {seconds} | {rate} | "
                         f"{m['memory']['peak_rss']:.0f} | {m['memory'].get('rss_anon', 0):.0f} | |")
        rows = [(f"train {run}", m) for run, m in r.get("train", {}).items()]
        rows += [(f"2 ranks {run}, rank {rank}", m) for run, ranks in r.get("ranks", {}).items()
                 for rank, m in enumerate(ranks)]
        for run, m in rows:
            e = m["after_epoch"]
            lines.append(f"| {name} | {run} | {m['seconds']:.2f} | | {m['memory']['peak_rss']:.0f} | "
                         f"{m['memory'].get('rss_anon', 0):.0f} | {e.get('rss_anon', 0):.0f} / "
                         f"{e.get('store_rss', 0):.0f} / {e.get('store_pss', 0):.0f} |")
        lines.append(f"| {name} | store file | | | | | {r['store_mib']:.0f} MiB on disk |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("_load", "_train"):
        return child(sys.argv[1], sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="2,000 and 200 images: a quick check")
    parser.add_argument("--workdir", default=None, help="where images and caches go (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated images (with --workdir)")
    parser.add_argument("--decode-only", action="store_true",
                        help="only the decode times, the median of 3 runs each (results: <name>-decode.*)")
    args = parser.parse_args()
    sets = SMALL if args.small else FULL
    work = Path(args.workdir or tempfile.mkdtemp(prefix="gankit-data-bench-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"images and caches in {work}", flush=True)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    results = {"machine": {"cpus": cpus, "processor": platform.processor() or platform.machine(),
                           "python": platform.python_version()},
               "steps": STEPS, "batch": BATCH, "sets": {}}
    try:
        for image_set in sets:
            seconds = generate(image_set, work / "images", cpus)
            print(f"{image_set.name}: {image_set.n} {image_set.format} images "
                  f"({'generated in %.0f s' % seconds if seconds else 'already there'})", flush=True)
            results["sets"][image_set.name] = benchmark(image_set, work / "images", work, args.decode_only)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = ("small" if args.small else "full") + ("-decode" if args.decode_only else "")
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = table(results)
    (RESULTS / f"{name}.md").write_text(markdown + "\n")
    print(markdown)


def child(mode: str, argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    for name in ("--folder", "--out", "--runs"):
        parser.add_argument(name, required=True)
    for name in ("--size", "--workers", "--limit"):
        parser.add_argument(name, type=int, default=0)
    parser.add_argument("--no-cache", action="store_true")
    args = parser.parse_args(argv)
    result = measure_load(args) if mode == "_load" else measure_train(args)
    Path(args.out, f"rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()

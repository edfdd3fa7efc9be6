"""Make the pretrained generators gankit ships: train each entry, keep what fine-tuning and
sampling need, score it, and write its file and index entry into gankit/pretrained/.

    python scripts/make_pretrained.py                    # every entry (tens of minutes on 2 cores)
    python scripts/make_pretrained.py dcgan-mnist04      # one
    python scripts/make_pretrained.py --list             # what each entry is

Each entry is a gankit training run with fixed options and seed on built-in data, so a rerun on
the same machine and torch version writes the same weights (the sha256 may still differ across
machines: float rounding). The shipped file is the run's last checkpoint slimmed to G, D, G_ema,
the config and the data's facts (no optimiser moments, RNG or ADA state: a fine-tuned run starts
those fresh anyway), so it stays small. The digit entries are scored by KID on the shipped digit
classifier's features against the digits of their classes (2000 samples of the EMA generator);
faces have no feature network on this machine, so the face entry reports its training only.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "gankit" / "pretrained"
KEPT = ("format", "version", "config", "step", "images_seen", "G", "D", "G_ema", "data")


@dataclass(frozen=True)
class Entry:
    name: str
    description: str
    data: dict  # DataConfig options
    options: dict  # the run's options (recipe, batch, augmentation, ...)
    steps: int
    classes: tuple[int, ...] | None = None  # keep only these labels of the data
    holdout_last: int = 0  # the data's last N images are left out (benchmarks/projection.py projects them)
    score_features: str | None = "mnist"  # KID features; None: not scored
    shipped: bool = True  # False: a benchmark's model, made only when named (with --out elsewhere)
    extra: dict = field(default_factory=dict)


ENTRIES = {e.name: e for e in [
    Entry("dcgan-mnist04",
          "the default DCGAN (the keras-io GAN-ADA nets) on the digits 0-4 of mnist5k; "
          "the source model of benchmarks/transfer.py",
          data={"source": "mnist5k", "size": 32, "channels": 1},
          options={"batch": 32, "augment": {"mode": "ada", "ada_kimg": 10.0}}, steps=3000, classes=(0, 1, 2, 3, 4)),
    Entry("dcgan-mnist",
          "the default DCGAN (the keras-io GAN-ADA nets) on mnist5k less its last 500 digits, which "
          "benchmarks/projection.py projects (the digit classifier never saw them either)",
          data={"source": "mnist5k", "size": 32, "channels": 1},
          options={"batch": 32, "augment": {"mode": "ada", "ada_kimg": 10.0}}, steps=3000, holdout_last=500),
    Entry("stylegan-mnist",
          "the stylegan recipe narrowed for a CPU (the stylegan-small preset: channels <= 64, 4 mapping "
          "layers) on mnist5k less its last 500 digits: the w-space model of benchmarks/projection.py",
          data={"source": "mnist5k", "size": 32, "channels": 1},
          options={"recipe": "stylegan", "batch": 32,
                   "model": {"channel_base": 1024, "channel_max": 64, "mapping_layers": 4}},
          steps=3000, holdout_last=500),
    Entry("dcgan-faces100",
          "the default DCGAN (the keras-io GAN-ADA nets) on the 100 faces of faces100 (grey, 32 px)",
          data={"source": "faces100", "size": 32, "channels": 1},
          options={"batch": 32, "augment": {"mode": "ada", "ada_kimg": 10.0}}, steps=3000, score_features=None),
    Entry("dcgan-digits59",
          "the default DCGAN on scikit-learn's 8x8 UCI handwritten digits 5-9 (another collection and "
          "style than mnist5k, upscaled to 32 px): benchmarks/transfer.py's source of the target's own "
          "kind, disjoint from the digits it is scored against",
          data={"source": "digits", "size": 32, "channels": 1},
          options={"batch": 32, "augment": {"mode": "ada", "ada_kimg": 10.0}}, steps=2000, classes=(5, 6, 7, 8, 9),
          shipped=False),
]}


def load_data(entry: Entry):
    from gankit.config import DataConfig
    from gankit.data import load_dataset

    data = load_dataset(DataConfig(**entry.data), progress=False)
    if entry.holdout_last:
        data = data.subset(torch.arange(len(data) - entry.holdout_last))
    if entry.classes is not None:
        keep = torch.isin(data.labels, torch.tensor(entry.classes))
        data = data.subset(torch.nonzero(keep).squeeze(1))
    return data


def make(entry: Entry, out_dir: Path = PACKAGE_DIR, steps: int | None = None, threads: int = 2,
         samples: int = 2000) -> dict:
    """Train `entry`, write OUT_DIR/NAME.pt and its record into OUT_DIR/index.yaml; the record."""
    from gankit.pretrained import sha256
    from gankit.resolve import resolve_config
    from gankit.run import build_run
    from gankit.training import checkpoint as ckpt

    torch.set_num_threads(threads)
    steps = steps or entry.steps
    data = load_data(entry)
    with tempfile.TemporaryDirectory() as work:
        options = {**entry.options, "data": entry.data, "steps": steps, "seed": 0, "progress": False,
                   "log_every": 100, "sample_every": 10**9, "checkpoint_every": steps, "runs_dir": work}
        run_dir = Path(work) / entry.name
        run_dir.mkdir()
        run = build_run(resolve_config(options), run_dir=run_dir, data=data)
        start = time.perf_counter()
        run.train()
        minutes = (time.perf_counter() - start) / 60
        state = ckpt.load_checkpoint(run.run_dir)
    slim = {key: state[key] for key in KEPT}
    out_dir.mkdir(parents=True, exist_ok=True)
    file = out_dir / f"{entry.name}.pt"
    torch.save(slim, file)
    kid = score(entry, slim, data, samples) if entry.score_features else None
    batch = entry.options["batch"]
    record = {"name": entry.name, "recipe": slim["config"]["recipe"], "data": describe_data(entry, len(data)),
              "size": entry.data["size"], "channels": slim["data"]["channels"],
              "budget": f"{steps} steps, batch {batch} ({steps * batch / 1000:.0f} kimg), "
                        f"{minutes:.0f} min on {threads} CPU thread{'s' if threads > 1 else ''} of {cpu_name()}",
              "file": file.name, "sha256": sha256(file), "url": None,
              "script": f"python scripts/make_pretrained.py {entry.name}",
              "description": entry.description + (f"; KID {kid:.3f} ({entry.score_features} features, {samples} "
                                                  "samples, against its training digits)" if kid is not None else
                                                  "; not scored (no face features on this machine)")}
    write_record(out_dir / "index.yaml", record)
    return record


def cpu_name() -> str:
    """The CPU's model name and vector width (timings differ between AVX-512 and AVX2 machines)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    return f"{model or platform.machine()}, {'AVX-512' if ' avx512f' in info else 'AVX2'}"


def describe_data(entry: Entry, count: int) -> str:
    classes = "" if entry.classes is None else f" digits {','.join(map(str, entry.classes))},"
    held = f" (its last {entry.holdout_last} held out)" if entry.holdout_last else ""
    return f"{entry.data['source']}{classes} {count} images{held}"


def score(entry: Entry, state: dict, data, samples: int) -> float:
    """KID of `samples` samples of the EMA generator against `data` (the images it was trained on)."""
    from gankit.generator import load_generator
    from gankit.metrics import KID_MEAN, compute_metrics

    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "model.pt"
        torch.save(state, path)
        fakes = load_generator(path).sample(samples, seed=0)
    return compute_metrics(fakes, data, entry.score_features, n=samples, metrics=("kid",), progress=False)[KID_MEAN]


def write_record(index: Path, record: dict) -> None:
    records = yaml.safe_load(index.read_text()) if index.is_file() else []
    records = [r for r in records or [] if r["name"] != record["name"]] + [record]
    index.write_text(yaml.safe_dump(sorted(records, key=lambda r: r["name"]), sort_keys=False, width=100))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="entries to make (default: every shipped one: "
                        f"{', '.join(n for n, e in ENTRIES.items() if e.shipped)})")
    parser.add_argument("--list", action="store_true", help="describe the entries and stop")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=PACKAGE_DIR)
    args = parser.parse_args(argv)
    if args.list:
        for entry in ENTRIES.values():
            print(f"{entry.name}: {entry.description} ({entry.steps} steps)")
        return
    unknown = [n for n in args.names if n not in ENTRIES]
    if unknown:
        sys.exit(f"error: unknown entries {', '.join(unknown)}: use one of {', '.join(ENTRIES)}")
    for name in args.names or [name for name, entry in ENTRIES.items() if entry.shipped]:
        record = make(ENTRIES[name], args.out, threads=args.threads)
        print(f"{name}: {record['budget']}; {record['description']}")


if __name__ == "__main__":
    main()

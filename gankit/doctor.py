"""gankit doctor: what this machine offers gankit, and what is missing.

    facts = collect()             # JSON-able: versions, cuda, mps, cpu, distributed, paths, extras
    checks = judge(facts)         # [Check("ok" | "warn" | "error", what, detail, hint)]

A missing GPU, extra or weights file is a "warn" with a one-line hint; only what stops every run
is an "error" (torch does not import, the runs folder cannot be written), and `gankit doctor`
then exits 1. Nothing here imports torch at module level, so `python -m gankit.doctor` still
reports a broken torch.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

# optional packages -> what they are for and how to get them (the hint when one is missing)
EXTRAS = {
    "gradio": "`gankit serve` needs it: pip install 'gankit[demo]'",
    "onnx": "`gankit export --format onnx` needs it: pip install 'gankit[export]'",
    "onnxruntime": "runs exported ONNX files (the export tests): pip install onnxruntime",
    "imageio-ffmpeg": "writing .mp4 videos needs it: pip install imageio-ffmpeg (or write .gif)",
    "mkdocs": "builds the tutorials site: pip install 'gankit[docs]'",
    "playwright": "the web page's browser test: pip install 'gankit[test]'",
}
CPU_EXTENSIONS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")  # /proc/cpuinfo flag names


@dataclass
class Check:
    status: str  # "ok", "warn" (works, with less), "error" (no run can work)
    what: str
    detail: str
    hint: str = ""  # what to do, where status is not "ok"


def collect(runs_dir: str | Path | None = None) -> dict:
    """The facts, as plain values; the sections torch provides are None when it does not import.
    `runs_dir`: the runs folder to check (default: gankit train's)."""
    try:
        import torch
    except Exception as err:  # not installed, or a broken install (missing libraries)
        torch, torch_error = None, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    else:
        torch_error = None
    from . import __version__
    from .config import TrainConfig

    facts = {"versions": {"gankit": __version__, "python": platform.python_version(),
                          "torch": torch.__version__ if torch else None, "torch_error": torch_error,
                          "torchvision": _version("torchvision")},
             "cpu": _cpu(torch), "extras": {name: _version(name) for name in EXTRAS},
             "paths": {"runs": _folder(runs_dir or TrainConfig.runs_dir)}}
    if torch is None:
        facts.update(cuda=None, mps=None, distributed=None)
        return facts
    facts["cuda"] = _cuda(torch)
    facts["mps"] = {"built": torch.backends.mps.is_built(), "available": torch.backends.mps.is_available()}
    dist = torch.distributed.is_available()
    facts["distributed"] = {"available": dist, "gloo": dist and torch.distributed.is_gloo_available(),
                            "nccl": dist and torch.distributed.is_nccl_available()}
    facts["paths"].update(_weights_and_caches())
    return facts


def _version(distribution: str) -> str | None:
    try:  # the installed metadata: no import, so a slow package (gradio) costs nothing
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cuda(torch) -> dict:
    if not torch.cuda.is_available():
        return {"available": False, "version": torch.version.cuda, "cudnn": None, "devices": []}
    devices = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        capability = (props.major, props.minor)
        # bf16 arithmetic is native from Ampere (sm_80); fp16 from sm_53 (tensor cores from sm_70)
        devices.append({"index": index, "name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                        "capability": f"{props.major}.{props.minor}", "bf16": capability >= (8, 0),
                        "fp16": capability >= (5, 3)})
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"available": True, "version": torch.version.cuda, "cudnn": cudnn, "devices": devices}


def _cpu(torch) -> dict:
    model, flags = platform.processor() or platform.machine(), None
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
        fields = [line.split(":", 1) for line in lines if ":" in line]
        model = next((v.strip() for k, v in fields if k.strip() in ("model name", "Model", "Hardware")), model)
        flags = set(next((v.split() for k, v in fields if k.strip() in ("flags", "Features")), []))
    except OSError:  # not Linux: the extensions are unknown (None), not absent
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"model": model, "cores": os.cpu_count(), "usable_cores": usable,
            "torch_threads": torch.get_num_threads() if torch else None,
            "extensions": {name: name in flags for name in CPU_EXTENSIONS} if flags is not None else None,
            "capability": torch.backends.cpu.get_cpu_capability() if torch else None}


def writable(path: Path) -> bool:
    """Whether a file can be made in `path`, or, where it does not exist yet, in the nearest folder
    above (mkdir would make it there). Tried, not read from mode bits: root ignores those, and
    neither they nor os.access see every read-only mount."""
    folder = Path(path).expanduser().absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return False
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".gankit-doctor-"):
            return True
    except OSError:
        return False


def _folder(path: str | Path, env: str | None = None, known: tuple[str, ...] = ()) -> dict:
    path = Path(path).expanduser()
    return {"path": str(path.absolute()), "exists": path.is_dir(), "writable": writable(path), "env": env,
            "files": [name for name in known if (path / name).is_file()], "known": list(known)}


def _weights_and_caches() -> dict:
    """Where gankit looks for weights and keeps caches, each with the known files found in it."""
    from . import pretrained, weights
    from .data.store import cache_dir as dataset_cache_dir
    from .metrics.evaluate import metrics_cache_dir
    from .metrics.features import INCEPTION_ENV, INCEPTION_FILE
    from .style_transfer import VGG19_ENV, VGG19_FILE

    entries = tuple(pretrained.PRETRAINED.get(name).file for name in pretrained.PRETRAINED.names())
    places = {"torch_hub": _folder(weights.hub_checkpoints(), "TORCH_HOME", (INCEPTION_FILE, VGG19_FILE)),
              "pretrained_package": _folder(pretrained.PACKAGE_DIR, None, entries),
              "pretrained_cache": _folder(pretrained.cache_dir(), "TORCH_HOME", entries),
              "metrics_cache": _folder(metrics_cache_dir(), "GANKIT_CACHE"),
              "dataset_cache": _folder(dataset_cache_dir(), "GANKIT_CACHE")}
    if os.environ.get(pretrained.ENV):
        places[pretrained.ENV] = _folder(os.environ[pretrained.ENV], pretrained.ENV, entries)
    for env in (INCEPTION_ENV, VGG19_ENV):  # a weights file named by the environment: its folder, and it
        if os.environ.get(env):
            given = Path(os.environ[env]).expanduser()
            places[env] = _folder(given.parent, env, (given.name,))
    return places


def judge(facts: dict) -> list[Check]:
    versions, checks = facts["versions"], []
    if versions["torch"] is None:
        checks.append(Check("error", "torch", f"does not import ({versions['torch_error']})",
                            "install torch for this Python: https://pytorch.org/get-started/locally/"))
    else:
        checks.append(Check("ok", "versions", f"gankit {versions['gankit']}, Python {versions['python']}, "
                            f"torch {versions['torch']}, torchvision {versions['torchvision']}"))
    cuda = facts["cuda"]
    if cuda is not None and cuda["available"]:
        checks.append(Check("ok", "cuda", f"CUDA {cuda['version']}, cuDNN {cuda['cudnn']}, "
                            f"{len(cuda['devices'])} device(s)"))
        for d in cuda["devices"]:
            line = (f"{d['name']}, {d['memory_gib']} GiB, compute {d['capability']}, "
                    f"bf16 {_yes(d['bf16'])}, fp16 {_yes(d['fp16'])}")
            hint = "" if d["bf16"] else "no native bf16 before compute 8.0: use --precision fp16 (loss-scaled) or fp32"
            checks.append(Check("warn" if hint else "ok", f"cuda:{d['index']}", line, hint))
    elif cuda is not None:
        build = f"torch built with CUDA {cuda['version']}" if cuda["version"] else "a CPU-only torch"
        checks.append(Check("warn", "cuda", f"no GPU available ({build})", "training runs on the CPU; for a GPU, "
                            "install torch's CUDA build that matches the driver (nvidia-smi)"))
    mps = facts["mps"]
    if mps is not None:  # Apple GPUs: missing only matters on a Mac
        hint = "update macOS (12.3+) and torch for Apple GPUs" if sys.platform == "darwin" and not mps["available"] else ""
        checks.append(Check("warn" if hint else "ok", "mps",
                            f"available {_yes(mps['available'])} (built {_yes(mps['built'])})", hint))
    checks += _cpu_checks(facts["cpu"])
    dist = facts["distributed"]
    if dist is not None:
        hint = ("--nproc needs torch.distributed: install a torch built with it" if not dist["available"]
                else "--nproc on CPUs needs gloo: install a torch built with it" if not dist["gloo"]
                else "--nproc on GPUs needs NCCL (torch's Linux CUDA builds)" if cuda["available"] and not dist["nccl"]
                else "")
        checks.append(Check("warn" if hint else "ok", "distributed",
                            f"gloo {_yes(dist['gloo'])}, nccl {_yes(dist['nccl'])}", hint))
    checks += _path_checks(facts["paths"])
    for name, version in facts["extras"].items():
        checks.append(Check("ok", name, version) if version else Check("warn", name, "not installed", EXTRAS[name]))
    return checks


def _cpu_checks(cpu: dict) -> list[Check]:
    ext = cpu["extensions"]
    found = ", ".join(f"{name} {_yes(has)}" for name, has in ext.items()) if ext is not None else "extensions unknown"
    checks = [Check("ok", "cpu", f"{cpu['model']}, {cpu['usable_cores']} of {cpu['cores']} cores usable, "
                    f"torch threads {cpu['torch_threads']}, kernels {cpu['capability']}; {found}")]
    if ext is not None and not (ext["avx512_bf16"] or ext["amx_bf16"]):
        checks.append(Check("warn", "cpu bf16", "no avx512_bf16 or amx_bf16: bf16 has no fast kernels on this CPU",
                            "train on this CPU with --precision fp32 (bf16 would be slower)"))
    return checks


def _path_checks(paths: dict) -> list[Check]:
    checks = []
    for name, place in paths.items():
        state = ("exists" if place["exists"] else "not made yet") + (", writable" if place["writable"] else ", NOT writable")
        missing = [f for f in place["known"] if f not in place["files"]]
        if place["known"]:
            state += f"; has {', '.join(place['files']) or 'none'}" + (f"; not here: {', '.join(missing)}" if missing else "")
        detail = f"{place['path']} ({state})"
        if name == "runs" and not place["writable"]:
            checks.append(Check("error", name, detail, "no run can be saved: pass a writable --runs-dir, "
                                "or fix the folder's permissions"))
        elif name.endswith("_WEIGHTS") and missing:  # a file the environment names must exist
            checks.append(Check("warn", name, detail, f"${name} names no file: point it at the weights, or unset it"))
        elif not place["writable"] and name != "pretrained_package":  # an installed package may be read-only
            where = f"set ${place['env']} to a writable folder" if place["env"] else "fix the folder's permissions"
            checks.append(Check("warn", name, detail, f"nothing can be downloaded or cached there: {where}"))
        else:
            checks.append(Check("ok", name, detail))
    return checks


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def report(runs_dir: str | Path | None = None) -> dict:
    """collect() and judge() together: the facts, "checks" (as dicts) and "ok" (no error)."""
    facts = collect(runs_dir)
    checks = judge(facts)
    return {**facts, "checks": [asdict(c) for c in checks], "ok": all(c.status != "error" for c in checks)}


def format_lines(result: dict) -> list[str]:
    """One line per check: its status, what, what was found, and the hint where there is one."""
    width = max(len(c["what"]) for c in result["checks"])
    return [f"{c['status']:<5} {c['what']:<{width}}  {c['detail']}" + (f"  -> {c['hint']}" if c["hint"] else "")
            for c in result["checks"]]


if __name__ == "__main__":  # works where torch is broken and the `gankit` command cannot start
    outcome = report()
    print("\n".join(format_lines(outcome)))
    sys.exit(0 if outcome["ok"] else 1)

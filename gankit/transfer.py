"""Start from a trained GAN: fine-tuning a source run's nets on new data (`--init-from`).

The source's nets (G, D and G_ema) are the new run's starting weights; its stored config decides
the architecture (recipe, model options, size, channels, spectral norm, labels), so what the
source learnt fits the nets it is loaded into. Everything else starts fresh: the data, the run
folder, the step counter, the optimisers' moments, the learning-rate schedule and ADA's p. The
new run records where it started (path and sha256 of the source file), so a fine-tuned model
says what it was fine-tuned from.

    config, source = resolve_init(options)   # options with the source's architecture
    build_run(config, init=source).train()
"""

from __future__ import annotations

import warnings

from .config import merge, upgrade_saved_config
from .errors import GankitError
from .pretrained import sha256
from .training import checkpoint as ckpt

# What shapes the nets: taken from the source; a different value given now is refused.
ARCHITECTURE = ("recipe", "model", "spectral_norm", "conditional")
DATA_ARCHITECTURE = ("size", "channels")


def resolve_init(options: dict) -> tuple[dict, dict]:
    """(options with the source's architecture filled in and the source recorded, the source
    checkpoint's state). Options that would give other nets than the source's are refused."""
    from .pretrained import PRETRAINED, source_file

    source = options["init_from"]
    checkpoint_file = source_file(source)  # a registered name, a URL, a run folder or a file
    state = ckpt.load_checkpoint(checkpoint_file)
    digest = sha256(checkpoint_file)
    if options.get("init_from_sha256") not in (None, digest):
        raise GankitError(f"--init-from {source}: its sha256 is {digest[:16]}…, not the "
                          f"{options['init_from_sha256'][:16]}… this run asked for: the file changed; "
                          "give the intended file, or drop init_from_sha256")
    saved = upgrade_saved_config(state["config"])
    facts = state.get("data", {})
    architecture = {key: saved[key] for key in ARCHITECTURE if key in saved}
    data = {"size": saved["data"]["size"], "channels": facts.get("channels") or saved["data"]["channels"]}
    for key, value in architecture.items():
        given = options.get(key)
        if given is None:
            continue
        merged = merge(value, given) if isinstance(value, dict) and isinstance(given, dict) else given
        if merged != value:
            raise GankitError(f"--init-from {source}: option {key} is {given!r} here but {value!r} in the "
                              f"source, and the architecture comes from the source: drop {key}, or "
                              "train from scratch without --init-from")
    for key, value in data.items():
        given = (options.get("data") or {}).get(key)
        if given is not None and given != value:
            raise GankitError(f"--init-from {source}: the source's nets take {value}"
                              f"{' px' if key == 'size' else ' channels'} images, not {given}: use "
                              f"--{key} {value} (images are resized and converted to it), or train "
                              "from scratch")
    # a registered name stays a name (it means the same file on every machine); else the file's path
    recorded = str(source) if str(source) in PRETRAINED else str(checkpoint_file.resolve())
    options = merge(options, {**architecture, "data": data, "init_from": recorded, "init_from_sha256": digest})
    return options, state


def load_source_weights(G, D, state: dict, source: str) -> dict:
    """The source's G and D into freshly built nets of the same architecture; returns the
    source's G_ema fitted the same way, for the run's EMA copy of G.

    A conditional source trained on another number of classes keeps every weight but its label
    layers, which start fresh (with a warning): the label embeddings, and the label columns of
    the first layer that takes a one-hot code (z's and the image channels' columns are kept)."""
    classes = (state.get("data", {}).get("num_classes") or 0, G.num_classes)
    try:
        fitted_G, relabelled = fit_to_classes(state["G"], G.state_dict(), *classes)
        fitted_D, relabelled_D = fit_to_classes(state["D"], D.state_dict(), *classes)
        fitted_ema, _ = fit_to_classes(state["G_ema"], G.state_dict(), *classes)
        G.load_state_dict(fitted_G)
        D.load_state_dict(fitted_D)
    except (KeyError, RuntimeError) as err:
        raise GankitError(f"--init-from {source} does not fit the nets its own config builds "
                          f"({str(err).splitlines()[0][:160]}): it was damaged or edited; use another "
                          "checkpoint") from None
    if relabelled or relabelled_D:
        warnings.warn(f"--init-from {source}: the source knows {classes[0]} classes and this data has "
                      f"{classes[1]}: its label layers start fresh (G: {', '.join(relabelled) or 'none'}; "
                      f"D: {', '.join(relabelled_D) or 'none'}); every other weight is the source's",
                      stacklevel=2)
    return fitted_ema


def fit_to_classes(source: dict, fresh: dict, classes_then: int, classes_now: int) -> tuple[dict, list[str]]:
    """`source`'s tensors in the shapes of `fresh` (a new net's state dict), and the names of
    those that were re-created for another class count. Every label input in gankit's nets is
    appended after what it joins (z, the image channels, the flattened pixels) or is a table
    with one row per class, so in the one dimension that differs the first `size - classes`
    entries are kept and the rest (the label part) come from the fresh net. Spectral norm's
    power-iteration vectors simply restart. Any other difference raises RuntimeError."""
    if set(source) != set(fresh):
        missing, extra = sorted(set(fresh) - set(source)), sorted(set(source) - set(fresh))
        raise RuntimeError(f"missing {missing[:3]}, unexpected {extra[:3]}")
    fitted, relabelled = {}, []
    for name, tensor in source.items():
        new = fresh[name]
        if tensor.shape == new.shape:
            fitted[name] = tensor
            continue
        differing = [d for d in range(tensor.dim()) if tensor.dim() == new.dim() and tensor.shape[d] != new.shape[d]]
        if classes_then != classes_now and name.endswith(("._u", "._v")):
            fitted[name] = new.clone()  # spectral norm's power iteration: starts again
            continue
        if classes_then != classes_now and len(differing) == 1:
            d = differing[0]
            kept = tensor.shape[d] - classes_then
            if kept >= 0 and kept == new.shape[d] - classes_now:
                out = new.clone()
                out.narrow(d, 0, kept).copy_(tensor.narrow(d, 0, kept))
                fitted[name] = out
                relabelled.append(name)
                continue
        raise RuntimeError(f"size mismatch for {name}: {tuple(tensor.shape)} in the file, "
                           f"{tuple(new.shape)} in the net")
    return fitted, relabelled

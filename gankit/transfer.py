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


def load_source_weights(G, D, state: dict, source: str) -> None:
    """The source's G and D into freshly built nets of the same architecture (and a check that
    its G_ema fits G, which the run loads into its EMA copy)."""
    try:
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        if set(state["G_ema"]) != set(G.state_dict()):
            raise RuntimeError("its G_ema holds other weights than its G")
    except (KeyError, RuntimeError) as err:
        raise GankitError(f"--init-from {source} does not fit the nets its own config builds "
                          f"({str(err).splitlines()[0][:160]}): it was damaged or edited; use another "
                          "checkpoint") from None

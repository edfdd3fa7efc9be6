"""gankit: train, evaluate and use GANs on your own images, above all small datasets."""

from .config import DataConfig, OptimConfig, TrainConfig
from .errors import GankitError

__version__ = "0.1.0"
__all__ = ["train", "load_generator", "LoadedGenerator", "load_translator", "Translator", "TrainConfig",
           "DataConfig", "OptimConfig", "GankitError", "__version__"]


def __getattr__(name: str):
    # The API pulls in the data and training stacks; import it on first use so that
    # `import gankit.config` (and `gankit --help`) stays quick.
    if name in ("train", "load_generator", "LoadedGenerator", "load_translator", "Translator"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'gankit' has no attribute {name!r}")

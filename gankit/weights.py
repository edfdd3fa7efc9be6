"""Files of weights gankit uses but does not ship — the Inception and VGG19 ImageNet weights, the
pretrained generators not in the package: find one on this machine, else download it where the
network answers, else say in one line where to put it.

    path = find_or_download("the VGG19 ImageNet weights", VGG19_FILE, [hub_checkpoints()],
                            url=VGG19_URL, sha256_prefix="...", given=[(weights, "the weights file")])

One place for the order of the search, the network probe (which never hangs on a machine without
network) and the download (a stalled connection fails, a wrong hash leaves no file), so every
kind of weights behaves the same offline.
"""

from __future__ import annotations

import socket
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterable, Sequence

import torch

from .errors import GankitError

PROBE_TIMEOUT = 1.5  # seconds: long enough for a working network, short enough to feel instant


def hub_checkpoints() -> Path:
    """torch.hub's cache of downloaded weights (where torchvision and torch-fidelity look too)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_or_download(what: str, file_name: str, folders: Sequence[Path], *, url: str | None = None,
                     sha256_prefix: str = "", given: Iterable[tuple[str | Path | None, str]] = (),
                     instead: str = "") -> Path:
    """The file `what` needs, in this order:

    1. the first path in `given` that is set — (path, where it came from) pairs such as an
       option and an environment variable; it must exist;
    2. `file_name` in the first of `folders` that has it;
    3. downloaded into the last of `folders` (the cache) when `url` is set and answers.

    Otherwise a GankitError naming the file to put there; `instead` adds other ways out (an
    option, an environment variable, how to make the file)."""
    found = find_on_disk(what, file_name, folders, url=url, given=given)
    if found is not None:
        return found
    target = Path(folders[-1]) / file_name
    if url is None or not network_reachable(url):
        fetch = f"fetch {url} elsewhere" if url else "get the file"
        offline = " and there is no network to download it" if url else ""
        raise GankitError(f"{what} ({file_name}) is not on this machine{offline}: {fetch} and put "
                          f"it at {target}{instead}")
    return download(url, target, sha256_prefix)


def find_on_disk(what: str, file_name: str, folders: Sequence[Path], *, url: str | None = None,
                 given: Iterable[tuple[str | Path | None, str]] = ()) -> Path | None:
    """Steps 1 and 2 of `find_or_download`, without the download: the file, or None where only a
    download would bring it (dry runs say so instead of fetching). A given path that does not
    exist is still an error."""
    for path, origin in given:
        if path:
            path = Path(path).expanduser()
            if not path.is_file():
                source = f" (from {url})" if url else ""
                raise GankitError(f"{origin} {path} does not exist: give the path of {what}, "
                                  f"such as {file_name}{source}")
            return path
    for folder in folders:
        if (Path(folder) / file_name).is_file():
            return Path(folder) / file_name
    return None


def network_reachable(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether a TCP connection to the url's host (or the https proxy) opens within `timeout`.

    The probe runs in a daemon thread and is abandoned after `timeout`, because name lookup
    (getaddrinfo) ignores socket timeouts and can hang for a long time on a machine without
    network; this function always returns within `timeout` seconds.
    """
    target = urllib.parse.urlsplit(urllib.request.getproxies().get("https") or url)
    host, port = target.hostname, target.port or (443 if target.scheme == "https" else 80)
    opened = threading.Event()

    def probe():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            opened.set()
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)  # returns as soon as the probe fails or connects
    return opened.is_set()


def download(url: str, target: Path, sha256_prefix: str) -> Path:
    """Download `url` to `target`; any failure is one line saying where to put it by hand."""
    previous_timeout = socket.getdefaulttimeout()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # A stalled connection must fail, not hang: every socket read gives up after 30 s.
        socket.setdefaulttimeout(30)
        # Writes a temporary file and renames it, and checks the sha256 prefix.
        torch.hub.download_url_to_file(url, str(target), sha256_prefix)
    except Exception as err:  # HTTP errors, stalls, a wrong hash, an unwritable folder: no file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GankitError(f"downloading {url} failed ({reason}); download it by hand "
                          f"to {target}") from None
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return target

"""Run the tutorials' commands for real and refresh the pictures their pages show.

The commands a reader types are the `gankit ...` lines of the fenced ```bash blocks in
docs/tutorials/<language>/*.md. This script runs those of the English pages (the Korean pages hold
the same commands; tests/test_docs.py checks that) one after another, as a reader would, each
chapter in its own scratch folder. Then every picture a command wrote with `--out` whose name the
chapter shows under docs/tutorials/assets/<chapter>/ is copied there, and that picture's caption in
both languages (the line that ends with `<!-- made-by: NAME -->`) is rewritten to say these commands
made it.

Not part of the test suite: each command trains for up to ten minutes on 2 CPU cores (a chapter
has one to four of them), so run it on a quiet machine. The fast suite dry-runs the same commands through `page_commands` below.

    python scripts/run_tutorials.py --list              # the chapters and their commands
    python scripts/run_tutorials.py --only tf-dcgan     # one chapter (or several: a,b)
    python scripts/run_tutorials.py                     # every chapter (10-30 minutes each)
    python scripts/run_tutorials.py --dry-run           # trains with --dry-run only: seconds

Commands on a torchvision dataset (`--data fashion-mnist`, ...) need a download the first time,
and so does `gankit stylize` without `--random-weights` while the ImageNet VGG19 weights are not on
the machine; they are skipped unless `--with-downloads` is given. Pictures a chapter's commands
read (`gankit stylize astronaut.jpg coffee.jpg ...`) ship in its assets folder, as the page shows
them for the reader to save; they are copied into the scratch folder before the commands run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "docs" / "tutorials"
ASSETS = TUTORIALS / "assets"
LANGUAGES = ("en", "ko")
SCRATCH = ROOT / "build" / "tutorials"  # build/ is ignored by git
PICTURE_SUFFIXES = (".png", ".gif", ".mp4", ".jpg")

# an opening fence ```bash (indented inside a list or an admonition, perhaps) up to its closing fence
BASH_BLOCK = re.compile(r"^(?P<indent>[ \t]*)```bash[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
MADE_BY = re.compile(r"^.*<!-- made-by: (?P<name>[^ ]+) -->[ \t]*$", re.M)
# the caption a regenerated picture gets, per language
CAPTIONS = {
    "en": "*Made by the commands above on {date} (`scripts/run_tutorials.py`).*",
    "ko": "*위 명령으로 {date}에 만든 그림입니다 (`scripts/run_tutorials.py`).*",
}


# ---- reading the pages (shared with tests/test_docs.py) ---------------------------------------

def pages(language: str = "en") -> list[Path]:
    """The tutorial pages of one language: the index, then the chapters in the order it lists them."""
    found = sorted((TUTORIALS / language).glob("**/*.md"))
    index = TUTORIALS / language / "index.md"
    listed = re.findall(r"\]\(([^)#\s]+\.md)\)", index.read_text(encoding="utf-8")) if index.exists() else []
    order = {(index.parent / link).resolve(): i for i, link in reversed(list(enumerate(listed)))}
    return sorted(found, key=lambda p: (p != index, order.get(p.resolve(), len(order)), str(p)))


def chapter(page: Path) -> str:
    """A page's name without language or suffix: docs/tutorials/ko/tf-dcgan.md -> tf-dcgan."""
    return page.relative_to(TUTORIALS).with_suffix("").as_posix().split("/", 1)[1]


def bash_blocks(text: str) -> list[str]:
    """The bodies of the fenced ```bash blocks, dedented."""
    blocks = []
    for match in BASH_BLOCK.finditer(text):
        indent = len(match["indent"])
        blocks.append("".join(line[indent:] if line[:indent].isspace() else line.lstrip()
                              for line in match["body"].splitlines(keepends=True)))
    return blocks


def block_commands(block: str) -> list[str]:
    """The `gankit ...` commands of one block: `\\` continuations joined, comments dropped, each
    written back in one normal form (so the two languages may comment differently)."""
    joined, current = [], ""
    for line in block.splitlines():
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    if current:
        joined.append(current)
    commands = []
    for line in joined:
        words = shlex.split(line, comments=True)
        if words and words[0] == "gankit":
            commands.append(shlex.join(words))
    return commands


def page_commands(page: Path) -> list[str]:
    """Every `gankit ...` command of a page's bash blocks, in order."""
    return [command for block in bash_blocks(page.read_text(encoding="utf-8")) for command in block_commands(block)]


def option(words: list[str], name: str) -> str | None:
    """The value of `--name VALUE` or `--name=VALUE` in a command's words (the last one wins)."""
    value = None
    for i, word in enumerate(words):
        if word == name and i + 1 < len(words):
            value = words[i + 1]
        elif word.startswith(name + "="):
            value = word.split("=", 1)[1]
    return value


def shown_pictures(page: Path) -> set[str]:
    """The asset paths (relative to docs/tutorials/assets) that a page shows."""
    text = page.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)\s]+)", text) + re.findall(r"<img[^>]*\ssrc=\"([^\"]+)\"", text)
    shown = set()
    for link in links:
        target = (page.parent / link).resolve()
        if target.is_relative_to(ASSETS.resolve()):
            shown.add(target.relative_to(ASSETS.resolve()).as_posix())
    return shown


def needs_download(words: list[str]) -> bool:
    """Whether the command trains on a torchvision dataset (fetched on first use), or stylizes with
    ImageNet VGG19 weights that are not on this machine (downloaded on first use)."""
    if words[1:2] == ["stylize"]:
        if "--random-weights" in words or option(words, "--weights"):
            return False
        from gankit.style_transfer import VGG19_ENV, vgg19_hub_path

        return not (os.environ.get(VGG19_ENV) or vgg19_hub_path().is_file())
    source = option(words, "--data")
    if source is None:
        return False
    from gankit.data import DATASETS

    if source not in DATASETS.names():
        return False
    return DATASETS.get(source).__module__.endswith("torchvision_sets")


def input_pictures(name: str, words: list[str]) -> list[Path]:
    """The pictures of a chapter's assets that a command reads: bare file names among its words
    (not its --out) that docs/tutorials/assets/<chapter>/ holds, such as stylize's content and style."""
    out = option(words, "--out")
    return [ASSETS / name / word for word in words[1:]
            if not word.startswith("-") and "/" not in word and word != out
            and Path(word).suffix in PICTURE_SUFFIXES + (".jpeg", ".webp") and (ASSETS / name / word).is_file()]


# ---- running them ------------------------------------------------------------------------------

def run_chapter(page: Path, args) -> list[str]:
    """Run one chapter's commands in its scratch folder; return the pictures refreshed."""
    name = chapter(page)
    scratch = Path(args.scratch) / name
    shutil.rmtree(scratch, ignore_errors=True)  # run names must be new: start from an empty folder
    scratch.mkdir(parents=True)
    print(f"== {name} (in {scratch})", flush=True)
    written, skipped_runs = [], set()
    for command in page_commands(page):
        words = shlex.split(command)
        if needs_download(words) and not args.with_downloads:
            print(f"   skipped (downloads its data; --with-downloads runs it): {command}", flush=True)
            skipped_runs.add(f"runs/{option(words, '--name')}")
            continue
        if skipped_runs.intersection(words):
            print(f"   skipped (its run was skipped): {command}", flush=True)
            continue
        for picture in input_pictures(name, words):  # as the reader saved them from the page
            shutil.copyfile(picture, scratch / picture.name)
        argv = words[1:]
        if args.dry_run:
            if argv[0] != "train":
                print(f"   skipped (needs the trained run): {command}", flush=True)
                continue
            argv = argv + ["--dry-run"]
        print(f"   $ {shlex.join(['gankit', *argv])}", flush=True)
        done = subprocess.run([sys.executable, "-m", "gankit", *argv], cwd=scratch)
        if done.returncode != 0:
            raise SystemExit(f"error: `{command}` (chapter {name}) failed with exit code {done.returncode}; "
                             f"its outputs are in {scratch}")
        out = option(words, "--out")
        if out and Path(out).suffix in PICTURE_SUFFIXES:
            written.append(out)
    if args.dry_run or args.no_copy:
        return []
    return copy_pictures(name, [scratch / out for out in written])


def copy_pictures(name: str, files: list[Path]) -> list[str]:
    """Copy the pictures a chapter shows into its assets and rewrite their captions."""
    shown = set().union(*(shown_pictures(TUTORIALS / language / f"{name}.md") for language in LANGUAGES
                          if (TUTORIALS / language / f"{name}.md").exists()))
    refreshed = []
    for file in files:
        asset = f"{name}/{file.name}"
        if asset not in shown:
            print(f"   not shown by the pages, left in the scratch folder: {file}")
            continue
        (ASSETS / name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, ASSETS / asset)
        refreshed.append(asset)
    date = datetime.date.today().isoformat()
    for language in LANGUAGES:
        page = TUTORIALS / language / f"{name}.md"
        if not page.exists():
            continue
        refreshed_names = {Path(asset).name for asset in refreshed}
        text = MADE_BY.sub(lambda m: (CAPTIONS[language].format(date=date) + f" <!-- made-by: {m['name']} -->"
                                      if m["name"] in refreshed_names else m[0]), page.read_text(encoding="utf-8"))
        page.write_text(text, encoding="utf-8")
    for asset in refreshed:
        print(f"   refreshed docs/tutorials/assets/{asset}")
    return refreshed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="print each chapter's commands and the pictures it shows; run nothing")
    parser.add_argument("--only", default=None, help="comma-separated chapters to run (names as --list prints them)")
    parser.add_argument("--scratch", default=str(SCRATCH),
                        help="where the runs go, one emptied sub-folder per chapter (default: build/tutorials)")
    parser.add_argument("--dry-run", action="store_true", help="run each `gankit train` with --dry-run, skip the rest")
    parser.add_argument("--with-downloads", action="store_true", help="also run commands whose data must be downloaded")
    parser.add_argument("--no-copy", action="store_true", help="leave the pages and their pictures as they are")
    args = parser.parse_args(argv)

    chapters = [page for page in pages("en") if page_commands(page)]
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - {chapter(page) for page in chapters})
        if unknown:
            parser.error(f"no chapter with commands named {', '.join(unknown)}; "
                         f"these have: {', '.join(chapter(page) for page in chapters)}")
        chapters = [page for page in chapters if chapter(page) in wanted]
    if args.list:
        for page in chapters:
            print(f"{chapter(page)}  ({page.relative_to(ROOT)})")
            for command in page_commands(page):
                words = shlex.split(command)
                note = "  [downloads its data]" if needs_download(words) else ""
                print(f"    {command}{note}")
            for asset in sorted(shown_pictures(page)):
                print(f"    picture: docs/tutorials/assets/{asset}")
        return
    refreshed = []
    for page in chapters:
        refreshed += run_chapter(page, args)
    print(f"done: {len(chapters)} chapter(s), {len(refreshed)} picture(s) refreshed")


if __name__ == "__main__":
    main()

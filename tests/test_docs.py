"""The tutorials (docs/tutorials/{en,ko}/*.md) cannot rot: every command they show still runs.

Every `gankit train` line of a fenced ```bash block is run in-process with `--dry-run` (resolve and
check everything, build the nets on the meta device, train and write nothing); every other `gankit`
command is resolved to its command and checked with `--help` and against that command's options. The
Korean pages must hold the same commands and pictures as the English ones, and the site must build
with `mkdocs build --strict` (where mkdocs and its plugins are installed: `pip install -e ".[docs]"`).
The commands are read by scripts/run_tutorials.py, the script that runs them for real, so the test
checks exactly what that script runs.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("run_tutorials", ROOT / "scripts" / "run_tutorials.py")
tutorials = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tutorials)

ALL_PAGES = [page for language in tutorials.LANGUAGES for page in tutorials.pages(language)]
# (page, command) for every gankit command of every page, English and Korean
COMMANDS = [(page, command) for page in ALL_PAGES for command in tutorials.page_commands(page)]
TRAIN = [(page, command) for page, command in COMMANDS if shlex.split(command)[1:2] == ["train"]]
OTHER = [(page, command) for page, command in COMMANDS if shlex.split(command)[1:2] != ["train"]]


def _trains(command: str) -> bool:
    """Whether a command trains a run: `gankit train`, or `gankit translate train` (which has no
    --dry-run, so it is checked with the other commands, by its options)."""
    words = shlex.split(command)[1:]
    return words[:1] == ["train"] or words[:2] == ["translate", "train"]


def _id(case) -> str:
    page, command = case
    return f"{page.relative_to(tutorials.TUTORIALS).as_posix()}: {command}"


# ---- the reader: what counts as a command --------------------------------------------------------

def test_the_reader_joins_continuations_drops_comments_and_keeps_only_gankit():
    text = ("Some prose.\n\n```bash\n"
            "gankit train --config dcgan-tf --batch 32 \\\n    --name a   # a comment\n"
            "tensorboard --logdir runs\n"
            "gankit sample runs/a --out 'a b.png'\n"
            "```\n\n```text\ngankit train --not-a-command\n```\n\n"
            "- a list item\n\n    ```bash\n    gankit progress runs/a\n    ```\n")
    commands = [c for block in tutorials.bash_blocks(text) for c in tutorials.block_commands(block)]
    assert commands == ["gankit train --config dcgan-tf --batch 32 --name a",
                        "gankit sample runs/a --out 'a b.png'",
                        "gankit progress runs/a"]


def test_the_tutorials_have_commands_to_check():
    """A reader that finds nothing would let every other test pass vacuously."""
    assert ALL_PAGES, "no pages under docs/tutorials/"
    for page in tutorials.pages("en"):
        if page.name != "index.md":
            assert any(_trains(c) for c in tutorials.page_commands(page)), \
                f"{page} shows no `gankit train` (or `gankit translate train`) command in a ```bash block"


# ---- every command runs --------------------------------------------------------------------------

@pytest.mark.parametrize("case", TRAIN, ids=[_id(case) for case in TRAIN])
def test_train_command_dry_runs(case, tmp_path, capsys):
    page, command = case
    argv = shlex.split(command)[1:] + ["--dry-run", "--runs-dir", str(tmp_path / "runs")]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, f"{page}: `{command}` failed its dry run:\n{err or out}"
    assert "# dry run:" in out
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), "a dry run wrote a run"


def _is_group(command) -> bool:
    return hasattr(command, "commands")  # typer's groups (its own copy of click's Group)


def _command_of(words: list[str]) -> tuple[list[str], object]:
    """Walk `gankit WORD WORD ...` down the command groups: (the command's path, the command)."""
    from gankit.cli import app

    command, path = typer.main.get_command(app), []
    for word in words[1:]:
        if not _is_group(command) or word.startswith("-"):
            break
        if word not in command.commands:
            raise AssertionError(f"`gankit {' '.join(path + [word])}` is not a command "
                                 f"(`gankit {' '.join(path)} --help` lists: {', '.join(sorted(command.commands))})")
        command, path = command.commands[word], path + [word]
    return path, command


@pytest.mark.parametrize("case", OTHER, ids=[_id(case) for case in OTHER])
def test_other_command_exists_with_these_options(case, capsys):
    """sample, progress, eval ... need a trained run, so they are not run: their command must exist
    (its --help runs), every --option must be one of its options, and the run folder they read must
    be one that a `gankit train --name` above them on the same page makes."""
    page, command = case
    words = shlex.split(command)
    path, cmd = _command_of(words)
    assert not _is_group(cmd), f"{page}: `{command}` names a group, not a command"
    code, out, err = run_cli(path + ["--help"], capsys)
    assert code == 0 and "Usage:" in out, f"{page}: `gankit {' '.join(path)} --help` failed:\n{err}"
    options = {name for param in cmd.params for name in (*param.opts, *param.secondary_opts)}
    used = {word.split("=", 1)[0] for word in words[1 + len(path):] if word.startswith("--")}
    assert used <= options, (f"{page}: `{command}` uses {', '.join(sorted(used - options))}, "
                             f"not an option of `gankit {' '.join(path)}`")
    earlier = tutorials.page_commands(page)
    trained = {tutorials.option(shlex.split(c), "--name")
               for c in earlier[:earlier.index(command)] if _trains(c)}
    runs = [w for w in words[1 + len(path):] if w.startswith("runs/")]
    for run in runs:
        assert run.split("/")[1] in trained, (f"{page}: `{command}` reads {run}, which no "
                                              f"`gankit train --name` (or `translate train --name`) before it "
                                              f"on the page makes")


# ---- both languages, the same commands and pictures ----------------------------------------------

def test_every_english_page_has_a_korean_page_with_the_same_commands_and_pictures():
    english = {page.relative_to(tutorials.TUTORIALS / "en") for page in tutorials.pages("en")}
    korean = {page.relative_to(tutorials.TUTORIALS / "ko") for page in tutorials.pages("ko")}
    assert english == korean, (f"only in en/: {sorted(map(str, english - korean))}; "
                               f"only in ko/: {sorted(map(str, korean - english))}")
    for name in sorted(english):
        en, ko = tutorials.TUTORIALS / "en" / name, tutorials.TUTORIALS / "ko" / name
        assert tutorials.page_commands(en) == tutorials.page_commands(ko), f"{name}: en and ko commands differ"
        assert tutorials.shown_pictures(en) == tutorials.shown_pictures(ko), f"{name}: en and ko pictures differ"


def test_pictures_exist_and_every_chapter_is_linked_from_its_index():
    for language in tutorials.LANGUAGES:
        index = (tutorials.TUTORIALS / language / "index.md").read_text(encoding="utf-8")
        for page in tutorials.pages(language):
            if page.name != "index.md":
                assert f"]({page.name})" in index, f"{language}/index.md does not link {page.name}"
            for asset in tutorials.shown_pictures(page):
                assert (tutorials.ASSETS / asset).is_file(), f"{page} shows assets/{asset}, which does not exist"


def test_the_script_lists_what_it_would_run(capsys):
    tutorials.main(["--list"])
    out = capsys.readouterr().out
    for page, command in TRAIN:
        if page.parent.name == "en":
            assert command in out


def test_the_script_refreshes_a_shown_picture_and_its_captions(tmp_path, monkeypatch):
    """What the script does after a chapter's commands ran, on a copy of the pages: a picture the
    pages show replaces the old one and both captions say so; one they do not show is left alone."""
    import shutil

    copy = tmp_path / "tutorials"
    shutil.copytree(tutorials.TUTORIALS, copy)
    monkeypatch.setattr(tutorials, "TUTORIALS", copy)
    monkeypatch.setattr(tutorials, "ASSETS", copy / "assets")
    for language in tutorials.LANGUAGES:  # both captions as a benchmark picture's, before the run
        page = copy / language / "tf-dcgan.md"
        page.write_text(tutorials.MADE_BY.sub(lambda m: f"*From a benchmark.* <!-- made-by: {m['name']} -->",
                                              page.read_text(encoding="utf-8")), encoding="utf-8")
    made = tmp_path / "scratch"
    made.mkdir()
    (made / "tf-dcgan-samples.png").write_bytes(b"new picture")
    (made / "not-shown.png").write_bytes(b"other")
    refreshed = tutorials.copy_pictures("tf-dcgan", [made / "tf-dcgan-samples.png", made / "not-shown.png"])
    assert refreshed == ["tf-dcgan/tf-dcgan-samples.png"]
    assert (copy / "assets" / "tf-dcgan" / "tf-dcgan-samples.png").read_bytes() == b"new picture"
    assert not (copy / "assets" / "tf-dcgan" / "not-shown.png").exists()
    for language in tutorials.LANGUAGES:
        text = (copy / language / "tf-dcgan.md").read_text(encoding="utf-8")
        captions = [line for line in text.splitlines() if "<!-- made-by: " in line]
        rewritten = [line for line in captions if "scripts/run_tutorials.py" in line]
        assert len(rewritten) == 1 and "made-by: tf-dcgan-samples.png" in rewritten[0], language
        assert len(captions) == 2 and "*From a benchmark.*" in captions[0]  # the GIF's is untouched
    assert tutorials.page_commands(copy / "ko" / "tf-dcgan.md") == tutorials.page_commands(copy / "en" / "tf-dcgan.md")


# ---- the site ------------------------------------------------------------------------------------

def test_site_builds_strictly(tmp_path):
    for module, package in (("mkdocs", "mkdocs"), ("mkdocs_static_i18n", "mkdocs-static-i18n"),
                            ("material", "mkdocs-material")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{package} is not installed (pip install -e \".[docs]\" installs the site's tools)")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for language, prefix in (("en", ""), ("ko", "ko/")):
        for page in tutorials.pages(language):
            stem = page.relative_to(tutorials.TUTORIALS / language).with_suffix("")
            html = site / prefix / ("index.html" if stem.name == "index" else f"{stem.as_posix()}/index.html")
            assert html.is_file(), f"{page} was not built ({html})"

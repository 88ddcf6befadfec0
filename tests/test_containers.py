"""The container recipes (Dockerfile, .dockerignore, apptainer.def) against the files they rely on.

The static checks read the recipes and the files they name, so a pin bumped in constraints.txt, a Makefile target
renamed or a file moved breaks a test here, not an image build on a cluster hours later:
- every ``pip install`` in a recipe is constrained by constraints.txt, and the Makefile's own installs are too;
- the torch and torchvision pins a recipe names are those of constraints.txt and pyproject.toml;
- every ``make`` target a recipe runs is a target of the Makefile, and the install target the image builds is the
  one ``make test`` needs (so the image's ``make test`` does not reinstall);
- every path the Dockerfile COPYs exists and is not excluded by .dockerignore, the install's inputs are copied
  before the install runs, and apptainer.def copies the same paths.

The real build (``docker build`` of the CPU image, minutes) runs only where a Docker daemon answers, and is marked
slow (``make test-slow``).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH_PACKAGES = ("torch", "torchvision")


# -- readers of the recipes -------------------------------------------------------------------------------------
def joined_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined and comments dropped (both recipes and the Makefile use them)."""
    lines, current = [], ""
    for raw in text.splitlines():
        if not current and raw.lstrip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        lines.append(current + raw)
        current = ""
    if current:
        lines.append(current)
    return [line for line in lines if line.strip()]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order, e.g. ``("COPY", "src ./src")``."""
    instructions = []
    for line in joined_lines((ROOT / "Dockerfile").read_text()):
        keyword, _, arguments = line.strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def dockerfile_commands() -> list[str]:
    """The shell commands the Dockerfile runs: each ``&&`` part of a RUN, and the CMD."""
    commands = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "RUN":
            commands += [part.strip() for part in arguments.split("&&")]
        elif keyword == "CMD":
            commands.append(shlex.join(json.loads(arguments)) if arguments.startswith("[") else arguments)
    return commands


def apptainer_sections() -> dict[str, list[str]]:
    """``%section`` -> its lines (continuations joined); the header (Bootstrap, From) under ``header``."""
    sections: dict[str, list[str]] = {"header": []}
    name = "header"
    for line in joined_lines((ROOT / "apptainer.def").read_text()):
        if line.startswith("%"):
            name = line[1:].split()[0]
            sections[name] = []
        else:
            sections[name].append(line.strip())
    return sections


def apptainer_commands() -> list[str]:
    return [part.strip() for line in apptainer_sections()["post"] for part in line.split("&&")]


def constraint_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, separator, version = line.partition("==")
        if separator:
            pins[name.strip().lower()] = version.strip()
    return pins


def makefile() -> tuple[dict[str, list[str]], dict[str, str]]:
    """The Makefile's targets (with their prerequisites) and variables, ``$(VAR)`` expanded."""
    variables: dict[str, str] = {}
    targets: dict[str, list[str]] = {}

    def expand(text: str) -> str:
        for _ in range(5):  # BIN := $(VENV)/bin: nested one level here; a few rounds cover deeper ones
            text = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), m.group(0)), text)
        return text

    for line in joined_lines((ROOT / "Makefile").read_text()):
        if line.startswith("\t"):
            continue  # a recipe line
        assignment = re.match(r"^(\w+)\s*(?::=|\?=|=)\s*(.*)$", line)
        if assignment:
            variables[assignment.group(1)] = expand(assignment.group(2).strip())
            continue
        rule = re.match(r"^([^:#=]+):(?!=)(.*)$", line)
        if rule:
            for target in expand(rule.group(1)).split():
                if not re.fullmatch(r"\.[A-Z_]+", target):  # .PHONY and make's other special targets
                    targets[target] = expand(rule.group(2)).split()
    return targets, variables


def make_targets_run(commands: list[str]) -> list[str]:
    """The targets of every ``make`` in ``commands`` (its VAR=value overrides left out)."""
    targets = []
    for command in commands:
        words = shlex.split(command)
        if words and words[0] == "make":
            targets += [w for w in words[1:] if "=" not in w and not w.startswith("-")]
    return targets


def pip_installs(commands: list[str]) -> list[list[str]]:
    return [shlex.split(c) for c in commands if re.search(r"\bpip install\b", c)]


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's match syntax: ``*`` and ``?`` within one path component, ``**`` across any number of them."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` (relative to the context) out: the last pattern that matches it or one of its
    parent folders decides, ``!pattern`` taking it back in."""
    parts = Path(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!").strip("/"))
        if any(regex.match(c) for c in candidates):
            excluded = not negated
    return excluded


def docker_copy_sources() -> list[str]:
    sources = []
    for keyword, arguments in dockerfile_instructions():
        if keyword in ("COPY", "ADD"):
            words = [w for w in shlex.split(arguments) if not w.startswith("--")]
            sources += words[:-1]  # the last word is the destination
    return sources


def pinned(words: list[str]) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2) for w in words if (m := re.fullmatch(r"([\w.-]+)==([\w.+!-]+)", w))}


# -- the static checks ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("recipe", ["Dockerfile", "apptainer.def"])
def test_every_pip_install_is_constrained(recipe: str) -> None:
    commands = dockerfile_commands() if recipe == "Dockerfile" else apptainer_commands()
    installs = pip_installs(commands)
    assert installs, f"{recipe} installs nothing with pip; it should install torch at the pins, then run make"
    for words in installs:
        position = [i for i, w in enumerate(words) if w == "-c"]
        assert position and words[position[0] + 1] == "constraints.txt", f"{recipe}: {shlex.join(words)} lacks -c constraints.txt"
    # the rest of the environment is the Makefile's to install: its pip must be constrained as well
    _, variables = makefile()
    assert "-c constraints.txt" in variables["PIP_INSTALL"], variables["PIP_INSTALL"]


@pytest.mark.parametrize("recipe", ["Dockerfile", "apptainer.def"])
def test_torch_pins_are_those_of_constraints_and_pyproject(recipe: str) -> None:
    commands = dockerfile_commands() if recipe == "Dockerfile" else apptainer_commands()
    named = {}
    for words in pip_installs(commands):
        named.update(pinned(words))
    constraints = constraint_pins()
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    declared = pinned([d.replace(" ", "") for d in dependencies])
    for package in TORCH_PACKAGES:
        assert package in named, f"{recipe} does not install {package} at a pin"
        assert named[package] == constraints[package], f"{recipe}: {package}=={named[package]}, constraints.txt: {constraints[package]}"
        assert declared[package] == constraints[package], f"pyproject.toml: {package}=={declared[package]}"


@pytest.mark.parametrize("recipe", ["Dockerfile", "apptainer.def"])
def test_make_targets_exist_and_install_what_make_test_needs(recipe: str) -> None:
    commands = dockerfile_commands() if recipe == "Dockerfile" else apptainer_commands()
    run = make_targets_run(commands)
    targets, _ = makefile()
    assert run, f"{recipe} runs no make target; the install must go through the Makefile"
    assert [t for t in run if t not in targets] == [], f"{recipe} runs make targets the Makefile lacks: {sorted(targets)}"
    # The image's install target is what `make test` depends on, so `make test` in the image goes straight to pytest.
    assert set(targets["test"]) & set(run), f"{recipe} installs {run}; make test needs {targets['test']}"
    assert all(re.search(r"\bPYTHON=python3\b", c) for c in commands if c.startswith("make ")), \
        f"{recipe}: a make without PYTHON=python3 (the base image has python3, not the Makefile's guess)"
    if recipe == "Dockerfile":
        default = [a for k, a in dockerfile_instructions() if k == "CMD"]
        assert default and make_targets_run([shlex.join(json.loads(default[-1]))]) == ["test"], default


def test_makefile_reader_sees_the_known_targets() -> None:
    """The reader above, against targets the Makefile has had from the start (a reader finding nothing would let
    the target check pass vacuously)."""
    targets, variables = makefile()
    assert {"test", "demo", ".venv/.installed", ".venv/.installed-dev", ".venv/bin/python"} <= set(targets)
    assert ".venv/.installed" in targets[".venv/.installed-dev"]
    assert variables["BIN"] == ".venv/bin"


def test_dockerignore_leaves_out_local_state() -> None:
    patterns = dockerignore_patterns()
    for path in (".venv/bin/python", ".git/HEAD", "runs/mlflow.db", "data/affectsynth/clips.npz",
                 "src/affectlab/__pycache__/api.cpython-311.pyc", "tests/__pycache__/x.pyc", ".pytest_cache/v"):
        assert dockerignored(path, patterns), f"{path} would be sent into the image build"
    for path in ("src/affectlab/api.py", "configs/data/synth.yaml", "Makefile", "tests/conftest.py"):
        assert not dockerignored(path, patterns), path
    # the matcher itself: negation, and ** across folders
    assert not dockerignored("runs/keep.txt", ["runs", "!runs/keep.txt"])
    assert dockerignored("a/b/c.ckpt", ["**/*.ckpt"]) and not dockerignored("a/b/c.ckpt", ["*.ckpt"])


def test_docker_copies_exist_are_not_ignored_and_come_before_the_install() -> None:
    sources = docker_copy_sources()
    patterns = dockerignore_patterns()
    assert sources, "the Dockerfile copies nothing"
    for source in sources:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which the repository lacks"
        assert not dockerignored(source, patterns), f"the Dockerfile copies {source}, which .dockerignore leaves out"
        if (ROOT / source).is_dir():
            tracked = subprocess.run(["git", "ls-files", source], cwd=ROOT, capture_output=True, text=True).stdout.split()
            kept = [f for f in tracked if not dockerignored(f, patterns)]
            assert kept, f".dockerignore leaves out every tracked file under {source}"
    # What the install reads must be in the image before the RUN that installs: the Makefile, the install target's
    # prerequisites (pyproject.toml, constraints.txt), the package's readme and its sources.
    targets, _ = makefile()
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    needed = {"Makefile", readme, "src", *[p for p in targets[".venv/.installed"] if not p.startswith(".venv")]}
    before: set[str] = set()
    for keyword, arguments in dockerfile_instructions():
        if keyword == "RUN" and "make .venv/.installed" in arguments:
            break
        if keyword == "COPY":
            before |= {s.rstrip("/") for s in shlex.split(arguments)[:-1]}
    assert needed <= before, f"copied only after the install: {sorted(needed - before)}"


def test_apptainer_builds_the_same_image() -> None:
    sections = apptainer_sections()
    header = dict(line.split(":", 1) for line in sections["header"])
    base = [a for k, a in dockerfile_instructions() if k == "ARG" and a.startswith("BASE=")]
    assert header["Bootstrap"].strip() == "docker"
    assert base and header["From"].strip() == base[0].removeprefix("BASE="), (header, base)
    copied = {line.split()[0].rstrip("/") for line in sections["files"]}
    for source in copied:
        assert (ROOT / source).exists(), f"apptainer.def copies {source}, which the repository lacks"
    assert copied == {s.rstrip("/") for s in docker_copy_sources()}, "apptainer.def and the Dockerfile copy different files"
    assert any(line.startswith("exec affectlab") and '"$@"' in line for line in sections["runscript"])


# -- the real build ---------------------------------------------------------------------------------------------
def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(not docker_answers(), reason="no Docker daemon answers `docker info` here; the image build needs one")
def test_cpu_image_builds_and_runs_affectlab() -> None:
    """The CPU image builds from this checkout, its torch is the pinned CPU build, and its ``affectlab`` runs."""
    tag = "affectlab-test:cpu"
    build = subprocess.run(["docker", "build", "-t", tag, "."], cwd=ROOT, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    try:
        probe = "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.is_available())"
        versions = subprocess.run(["docker", "run", "--rm", tag, "python", "-c", probe], capture_output=True, text=True)
        assert versions.returncode == 0, versions.stderr[-2000:]
        torch_version, vision_version, _ = versions.stdout.split()
        pins = constraint_pins()
        assert torch_version == f"{pins['torch']}+cpu" and vision_version == f"{pins['torchvision']}+cpu", versions.stdout
        usage = subprocess.run(["docker", "run", "--rm", tag, "affectlab", "--help"], capture_output=True, text=True)
        assert usage.returncode == 0 and "affectlab" in usage.stdout, usage.stderr[-2000:]
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True)

"""A class on one server: nicknames, what each person keeps on the server, who may change which run, the class's
pinned default model, and the limits that protect the disk and the queue.

Everything lives under the runs folder: runs are folders there (``core.runs``), each person's other work (the
handwriting set) is in ``.people/<nickname>/``, the class's settings in ``.class.json``. Hidden names are never
listed as runs. Nothing here reads Streamlit.

Limits (each configurable in the environment, ``0`` switching it off):

======================================  =======  ===============================================================
setting                                 default  meaning
======================================  =======  ===============================================================
``MNIST_EXPLORER_RUNS_PER_PERSON``      20       runs one nickname (or, without codes, one browser session) keeps
``MNIST_EXPLORER_RUNS_CAP_MB``          2048     the runs folder's size; past it, new runs are refused
``MNIST_EXPLORER_JOBS_PER_MINUTE``      12       job submissions one session (one nickname) may make a minute
======================================  =======  ===============================================================
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.runs import RUNS_CAP_ENV, delete_run, folder_bytes, read_meta, rename_run, run_in, runs_cap_bytes

RUNS_PER_PERSON_ENV = "MNIST_EXPLORER_RUNS_PER_PERSON"
JOBS_PER_MINUTE_ENV = "MNIST_EXPLORER_JOBS_PER_MINUTE"
DEFAULT_RUNS_PER_PERSON = 20
DEFAULT_JOBS_PER_MINUTE = 12
RUN_KINDS = frozenset({"train", "import-model", "fine-tune", "transfer"})  # the job kinds that keep a new run
PEOPLE_DIR, CLASS_FILE = ".people", ".class.json"
PERSONAL_SET_FILE = "handwriting.npz"
NICKNAME_MAX = 24
_NICKNAME = re.compile(rf"[a-z0-9][a-z0-9_-]{{0,{NICKNAME_MAX - 1}}}")


def check_nickname(text: str) -> str:
    """The nickname as kept (lower case, blanks around removed); ValueError saying what a nickname may be."""
    name = (text or "").strip().lower()
    if not name:
        raise ValueError("Type a nickname: 1 to 24 letters, digits, - or _.")
    if not _NICKNAME.fullmatch(name):
        raise ValueError(
            f"{text.strip()[:40]!r} cannot be a nickname: use 1 to {NICKNAME_MAX} letters (a-z), digits, - or _, "
            "starting with a letter or a digit."
        )
    return name


def person_dir(runs_dir: str | os.PathLike, nickname: str) -> Path:
    """``<runs>/.people/<nickname>``: where a person's handwriting set is kept (the nickname is checked)."""
    return Path(runs_dir) / PEOPLE_DIR / check_nickname(nickname)


def may_change(run_owner: str | None, nickname: str | None, role: str) -> bool:
    """Whether a session may rename or delete a run owned by ``run_owner``: the teacher any run, an open server
    (no codes) anyone any run, a student only runs that record their own nickname."""
    if role in ("teacher", "open"):
        return True
    return bool(nickname) and run_owner == nickname


class NotYours(ValueError):
    """A student asked to change a run that records another owner (or none)."""


def owner_of(run_dir: str | os.PathLike) -> str | None:
    """The nickname a run records as its owner, or None (a run of the command line, of an older version)."""
    try:
        owner = read_meta(run_dir).get("owner")
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, str) and owner else None


def _check_may_change(run_dir: str | os.PathLike, runs_dir, nickname: str | None, role: str, what: str) -> Path:
    path = run_in(runs_dir, Path(run_dir).name)  # a run of this runs folder, by its name only
    if Path(run_dir).parent.resolve() != Path(runs_dir).resolve():
        raise ValueError(f"{Path(run_dir).name!r} is not a run of the runs folder")
    owner = owner_of(path)
    if not may_change(owner, nickname, role):
        whose = f"{owner}'s run" if owner else "a run of the class (it records no owner)"
        raise NotYours(f"{path.name!r} is {whose}: only its owner or the teacher may {what} it.")
    return path


def delete_as(run_dir: str | os.PathLike, runs_dir: str | os.PathLike, nickname: str | None, role: str) -> None:
    """Delete a run for a session (``role``, ``nickname``): NotYours unless ``may_change``."""
    delete_run(_check_may_change(run_dir, runs_dir, nickname, role, "delete"), runs_dir)


def rename_as(
    run_dir: str | os.PathLike, new_name: str, runs_dir: str | os.PathLike, nickname: str | None, role: str
) -> Path:
    """Rename a run for a session: NotYours unless ``may_change``; returns the new folder."""
    return rename_run(_check_may_change(run_dir, runs_dir, nickname, role, "rename"), new_name, runs_dir)


def group_of(run_owner: str | None, nickname: str | None, role: str) -> str:
    """'mine' or 'class': which part of the model list a run goes in (without codes, every run is 'mine')."""
    if role == "open":
        return "mine"
    return "mine" if nickname and run_owner == nickname else "class"


# --------------------------------------------------------------------------- the class's settings
def _class_file(runs_dir: str | os.PathLike) -> Path:
    return Path(runs_dir) / CLASS_FILE


def read_class_settings(runs_dir: str | os.PathLike) -> dict:
    """The class's settings (``{"default_model": run name}``); {} when none are kept or the file is damaged."""
    try:
        data = json.loads(_class_file(runs_dir).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_class_settings(runs_dir: str | os.PathLike, settings: dict) -> None:
    """Replace the class's settings atomically."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-class-", dir=runs_dir)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(settings, out)
        os.replace(tmp, _class_file(runs_dir))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pinned_model(runs_dir: str | os.PathLike) -> str | None:
    """The run name the teacher pinned as the class's default model, or None."""
    name = read_class_settings(runs_dir).get("default_model")
    return name if isinstance(name, str) and name else None


def pin_model(runs_dir: str | os.PathLike, name: str | None) -> None:
    """Pin the run ``name`` as the class's default model for every new session (None: unpin)."""
    settings = read_class_settings(runs_dir)
    if name:
        settings["default_model"] = name
    else:
        settings.pop("default_model", None)
    write_class_settings(runs_dir, settings)


# --------------------------------------------------------------------------- limits
def _int_env(name: str, default: int, environ=None) -> int:
    env = os.environ if environ is None else environ
    try:
        return max(0, int(str(env.get(name, "")).strip() or default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Limits:
    """``runs_per_person`` (0: no limit), ``cap_bytes`` of the runs folder (0: none), ``jobs_per_minute`` one
    session may submit (0: no limit)."""

    runs_per_person: int = DEFAULT_RUNS_PER_PERSON
    cap_bytes: int = 0
    jobs_per_minute: int = DEFAULT_JOBS_PER_MINUTE

    @classmethod
    def from_env(cls, environ=None) -> Limits:
        env = os.environ if environ is None else environ
        return cls(
            _int_env(RUNS_PER_PERSON_ENV, DEFAULT_RUNS_PER_PERSON, env),
            runs_cap_bytes(env),
            _int_env(JOBS_PER_MINUTE_ENV, DEFAULT_JOBS_PER_MINUTE, env),
        )


def megabytes(n: float) -> str:
    """'512 MB', '2.0 GB'."""
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{max(0, n) / 1e6:.0f} MB"


def refuse_new_runs(
    runs_dir: str | os.PathLike,
    count: int,
    kept: int,
    limits: Limits,
    who: str,
) -> str | None:
    """Why ``count`` new runs may not start (a sentence), or None: ``kept`` is how many runs ``who`` already has
    (on disk and in the queue); the runs folder must be below its cap."""
    if limits.cap_bytes:
        used = folder_bytes(runs_dir)
        if used >= limits.cap_bytes:
            return (
                f"The runs folder is full: it holds {megabytes(used)} and its cap is {megabytes(limits.cap_bytes)} "
                f"({RUNS_CAP_ENV}). New runs are refused until the teacher deletes some; nothing already there is "
                "touched."
            )
    if limits.runs_per_person and kept + count > limits.runs_per_person:
        return (
            f"{who} already {'have' if who == 'You' else 'has'} {kept} run{'s' if kept != 1 else ''} (kept or on "
            f"the way); a person keeps at most {limits.runs_per_person} ({RUNS_PER_PERSON_ENV}). Delete one of "
            "yours on the Start page first."
        )
    return None

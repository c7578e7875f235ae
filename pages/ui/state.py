"""One browser session's state, typed: what a learner has in hand and what the pages computed for it.

Every page reads and writes one ``Session`` (``session()``), kept under a single key of Streamlit's session state:

* ``digit``: the digit in hand (its pixels, where it came from, its label if known), set by the Activations page
  and used by the others;
* ``menu``: the page shown, the model asked for by a link or a finished job, notices already shown;
* ``jobs``: each job slot's handle (or handles), a refusal to show, the id already collected;
* one dataclass per page (``activations``, ``experiments``, ``train``, ``oip``, ``precursor``, ``clustering``,
  ``dream``, ``compare``): that page's own memory (canvas strokes, uploaded photos, messages) and its latest
  results, each result a ``Computed``: tagged with the model (and digit) it came from, so that a page shows it as
  current only for the model (and digit) in use, and otherwise says what it was computed for.

The widgets' values (each page's settings) are Streamlit's own widget state, bound by key with
``persist_state="session"`` so that a page switch keeps them. The active model is the sidebar picker's value
(``Session.active_model``).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import numpy as np
import streamlit as st

from core.jobs.system import JobHandle
from core.oip import search as oip
from core.runs import BUNDLED_MODELS, DEFAULT_MODEL_DIR, model_key, resolve_model_path, run_title
from pages.ui.resources import keep_maxima

SESSION_KEY = "explorer"  # the one key of st.session_state that holds a Session
ACTIVE_MODEL_KEY = "active_model"  # the sidebar picker's widget key: the active model's folder
T = TypeVar("T")
DigitSource = Literal["drawn", "uploaded", "test set"]


@dataclass(frozen=True)
class Digit:
    """The digit in hand: ``pixels`` ``(28, 28)`` uint8 (white ink on black, MNIST's layout), ``source``, ``name`` for
    sentences ('your drawing', 'MNIST test digit 227', 'photo.png') and ``label`` when it is known."""

    pixels: np.ndarray
    source: DigitSource
    name: str
    label: int | None = None

    def __post_init__(self) -> None:
        pixels = np.ascontiguousarray(self.pixels, np.uint8)
        if pixels.shape != (28, 28):
            raise ValueError(f"a digit is 28×28 pixels, not {pixels.shape}")
        object.__setattr__(self, "pixels", pixels)

    @property
    def key(self) -> str:
        """Identifies the pixels and their source (two equal drawings are the same digit)."""
        return self.source + ":" + content_key(self.pixels)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Digit) and other.key == self.key and other.label == self.label

    def __hash__(self) -> int:
        return hash((self.key, self.label))

    def describe(self) -> str:
        return self.name + (f" (label {self.label})" if self.label is not None else "")


def model_title(path: str | Path) -> str:
    """A model's name for sentences: 'the bundled article-II model' or the run's folder name."""
    return f"the bundled {run_title(path)} model" if Path(path) in BUNDLED_MODELS else run_title(path)


def content_key(array: np.ndarray) -> str:
    """A short key of an array's content (a photo, a digit): equal pixels, equal key."""
    array = np.ascontiguousarray(array)
    return hashlib.sha1(array.tobytes() + str(array.shape).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Computed(Generic[T]):
    """A result with what it was computed from: the model's key and folder, and the input (a digit, a photo) when
    it had one: ``input_key`` identifies it, ``input_name`` names it in sentences."""

    value: T
    model: str  # core.runs.model_key of the model
    model_path: str
    input_key: str | None = None
    input_name: str | None = None

    @classmethod
    def of(
        cls,
        value: T,
        model_path: str | Any,
        digit: Digit | None = None,
        *,
        input_key: str | None = None,
        input_name: str | None = None,
    ) -> Computed[T]:
        path = resolve_model_path(str(model_path))
        if digit is not None:
            input_key, input_name = digit.key, digit.describe()
        return cls(value, model_key(path), str(path), input_key, input_name)

    def is_for(self, model: str, input_key: str | None = None) -> bool:
        """Whether this result belongs to ``model`` (a model key) and, when it had an input, to ``input_key``."""
        return self.model == model and (self.input_key is None or self.input_key == input_key)

    def stale_note(
        self, model: str, model_path: str | Path, input_key: str | None = None, input_name: str | None = None
    ) -> str | None:
        """None when this result belongs to ``model`` (and ``input_key``); else what it was computed for, beside
        what is in use now: 'computed for <model A>, not for the active model (<model B>)', 'computed on <input A>,
        not on <input B>', or both."""
        other_model = self.model != model
        other_input = self.input_key is not None and self.input_key != input_key
        if other_model and other_input:
            return (
                f"computed for {model_title(self.model_path)} on {self.input_name}, not for the active model "
                f"({model_title(model_path)}) on {input_name}"
            )
        if other_model:
            return f"computed for {model_title(self.model_path)}, not for the active model ({model_title(model_path)})"
        if other_input:
            return f"computed on {self.input_name}, not on {input_name}"
        return None


@dataclass
class JobSlot:
    """What a page knows of its job: ``handle`` (a list for a group of jobs), a ``refused`` sentence to show and the
    ``collected`` id of the result already handed to the page."""

    handle: JobHandle | list[JobHandle] | None = None
    refused: str | None = None
    collected: Any = None


@dataclass
class MenuState:
    page: str | None = None  # the page this session's previous full run showed
    entered: bool = True  # this run came from another page (custom components are mounted afresh)
    sidebar_page: str | None = None  # the page the model picker was last drawn on
    pending_model: str | None = None  # a model to make active before the picker is drawn (a finished job, a link)
    model_param_applied: str | None = None  # the ?model= of the address already applied
    model_param_error: str | None = None
    jobs_notice_seen: str | None = None


# --------------------------------------------------------------------------- the pages' own memory
@dataclass
class ActivationsState:
    canvas_mounts: int = 0  # a new canvas key per remount (Clear, back from another page)
    strokes: dict | None = None  # the canvas's last drawing (fabric.js JSON), given back to a remounted canvas
    canvas_start: dict | None = None  # the drawing the current canvas was mounted with
    drawn: np.ndarray | None = None  # the 28×28 digit of the current strokes
    committed: np.ndarray | None = None  # the drawing the sections below show
    previous_input: str | None = None  # Draw, Upload or Pick on the previous run
    upload: tuple[str, bytes] | None = None  # (file name, bytes) of the last uploaded image: kept over page switches
    probability_chart: Any = None  # core.figures.activations.ProbabilityChart, updated in place while drawing
    pen_strokes: list | None = None  # the drawing pad's strokes ({w, p: [[x, y], ...]}), given back to a remounted pad
    pad_seq: int | None = None  # the pad's last value the page has read (pen up, Undo or Clear)
    pad_notes: list[str] | None = None  # what the server says about the current drawing (doubts, a mismatch)
    pad_answered: bool = True  # the pad itself answered the current drawing (else the server's answer shows)


@dataclass
class ExperimentsState:
    handed: str | None = None  # the key of the digit in hand when the Digit radio was last reset
    grid_mounts: int = 0  # a new map-grid chart per change: no stale selection
    knockout: Computed | None = None  # core.experiments.knockout.KnockoutOutcome on the test set
    personal_set: Any = None  # core.experiments.personal_set.PersonalSet, replaced whole on every change
    message: tuple[str, str] | None = None  # (kind, text) of the handwriting tab, shown once
    hand_drawn: np.ndarray | None = None  # the handwriting canvas's digit
    canvas_mounts: int = 0
    uploader_mounts: int = 0
    set_file_mounts: int = 0
    fine_tune: Computed | None = None  # core.jobs.kinds.FineTuneOutcome


@dataclass
class TrainState:
    latest: str | None = None  # which ended last: "training", "seeds" or "import"; only its message is shown
    steps_per_epoch: int = 1
    job_epochs: int | None = None
    group_runs: list[str] | None = None  # the run folders of several seeds trained together
    view_pending: str | None = None  # a run to show in "Look at a run" on the next run
    live_figure: Any = None  # (records seen, figure) of the running training
    imported: tuple[str, list[str]] | None = None  # (run name, notes) of the last import
    replays: dict = field(default_factory=dict)  # (model key, "accuracy") or (model key, checkpoint, layer) → result
    lesson: Computed | None = None  # core.augmentation.lesson.LessonResult, tagged with the bundled model it measured


@dataclass
class RescuedOip:
    """An OIP found for a map by the precursor search: ``image`` ``(28, 28)`` model-input values."""

    map_index: int
    image: np.ndarray
    loss: float
    note: str = ""


@dataclass
class OipStore:
    """OIP results of one session, keyed by model key + layer (the Filters/OIP, Precursor and Compare pages).

    ``results[(model, layer)][config.key()]`` holds every oip.OipResult computed, ``latest[(model, layer)]``
    the most recent one, ``rescued[(model, layer)][map]`` the precursor's rescues, ``current_config``
    the settings shown on the Filters/OIP page, ``variants[(model, layer, map, settings)]`` the variants compared.
    """

    results: dict = field(default_factory=dict)
    latest: dict = field(default_factory=dict)
    rescued: dict = field(default_factory=dict)
    current_config: dict = field(default_factory=dict)  # (model, layer) → the OIP page's current settings
    variants: dict = field(default_factory=dict)  # core.oip.variants.MapVariants

    def put(self, model_key: str, result: oip.OipResult) -> None:
        keep_maxima(model_key, result)  # the test-digit scan goes to the server's one copy
        slot = (model_key, result.config.layer)
        self.results.setdefault(slot, {})[result.config.key()] = result
        self.latest[slot] = result

    def get(self, model_key: str, config: oip.OipConfig) -> oip.OipResult | None:
        result = self.results.get((model_key, config.layer), {}).get(config.key())
        if result is not None:
            self.latest[(model_key, config.layer)] = result
        return result

    def latest_result(self, model_key: str, layer: str) -> oip.OipResult | None:
        return self.latest.get((model_key, layer))

    def add_rescued(self, model_key: str, layer: str, rescued: RescuedOip) -> None:
        self.rescued.setdefault((model_key, layer), {})[int(rescued.map_index)] = rescued

    def rescued_for(self, model_key: str, layer: str) -> dict[int, RescuedOip]:
        return dict(self.rescued.get((model_key, layer), {}))


@dataclass
class PrecursorState:
    results: dict = field(default_factory=dict)  # (model key, layer) → core.oip.precursor.PrecursorResult


@dataclass
class ClusteringState:
    sweeps: dict = field(default_factory=dict)  # SweepConfig → SweepResult (the data does not depend on the model)
    sweep_shown: Any = None  # the SweepConfig shown
    pairs: dict = field(default_factory=dict)  # ClusterMlpConfig → PairResult
    pair_shown: Any = None
    mlp_error: str | None = None


@dataclass
class DreamState:
    result: Computed | None = None  # core.dream.deep_dream.DreamResult, with the model and photo it came from
    photo: tuple[str, bytes] | None = None  # (file name, bytes) of the last uploaded photo
    link_applied: str | None = None  # the ?layer=&map= of the address already applied
    gallery: Computed | None = None  # core.dream.gallery.DreamGallery


@dataclass
class CompareState:
    pending: list[str] | None = None  # runs the Train page just trained, to select on the next visit
    result: Any = None  # (run A, run B, core.compare.alignment.Alignment)
    oip_layer: str | None = None  # the layer whose OIPs the OIP group job computes


@dataclass
class TransferState:
    """The Transfer page: the learner's symbols (a core.experiments.transfer.SymbolSet, replaced whole on every
    change), the canvas's drawing, a message for the next run and the latest transfer (a Computed
    core.jobs.kinds.TransferOutcome, tagged with the model it started from)."""

    symbols: Any = None
    drawn: np.ndarray | None = None
    message: tuple[str, str] | None = None  # (kind, text), shown once
    canvas_mounts: int = 0
    uploader_mounts: int = 0
    set_file_mounts: int = 0
    result: Computed | None = None
    kept_for: str | None = None  # the nickname whose symbols were loaded from the server
    kept: Any = None  # the SymbolSet last loaded from or saved to the server


@dataclass
class AccessState:
    """Who this session is on a server with access codes (``pages.ui.access``): its ``role`` ('open', 'class',
    'teacher' or None before a right code), ``nickname``, the signed ``token`` its browser keeps in a cookie,
    wrong codes so far, and what of the person's work was loaded from and saved to the server."""

    role: str | None = None
    nickname: str = ""
    token: str | None = None
    failures: int = 0
    refused_cookie: str | None = None  # a cookie this session signed out of (the connection still sends it)
    clear_cookie: bool = False  # ask the browser to forget its cookie on the next run
    work_loaded: str | None = None  # the nickname whose handwriting set was loaded
    set_saved: Any = None  # the PersonalSet last loaded or saved (saved again when the page replaces it)
    runs_started: int = 0  # runs this session asked for (the limit without codes, where there is no nickname)
    notice: tuple[str, str] | None = None  # (kind, text) for the next run (a rename, a delete)


@dataclass
class Session:
    """Everything one browser session keeps (see the module's docstring)."""

    owner: str = field(default_factory=lambda: uuid.uuid4().hex[:12])  # owns this session's jobs
    digit: Digit | None = None
    menu: MenuState = field(default_factory=MenuState)
    jobs: dict[str, JobSlot] = field(default_factory=dict)
    activations: ActivationsState = field(default_factory=ActivationsState)
    experiments: ExperimentsState = field(default_factory=ExperimentsState)
    train: TrainState = field(default_factory=TrainState)
    oip: OipStore = field(default_factory=OipStore)
    precursor: PrecursorState = field(default_factory=PrecursorState)
    clustering: ClusteringState = field(default_factory=ClusteringState)
    dream: DreamState = field(default_factory=DreamState)
    compare: CompareState = field(default_factory=CompareState)
    transfer: TransferState = field(default_factory=TransferState)
    access: AccessState = field(default_factory=AccessState)

    @property
    def active_model(self) -> str:
        """The active model's folder: the sidebar picker's value (the bundled model until one is picked)."""
        return str(st.session_state.get(ACTIVE_MODEL_KEY) or DEFAULT_MODEL_DIR)

    def use_model(self, path: str) -> None:
        """Make ``path`` the active model on the next run (the picker is set before it is drawn)."""
        self.menu.pending_model = str(path)

    def job(self, slot: str) -> JobSlot:
        return self.jobs.setdefault(slot, JobSlot())


def session() -> Session:
    """This browser session's ``Session`` (created on its first run)."""
    current = st.session_state.get(SESSION_KEY)
    if not isinstance(current, Session):
        current = Session()
        st.session_state[SESSION_KEY] = current
    return current


def oip_store() -> OipStore:
    """This session's OIP results."""
    return session().oip


def store_oip_result(handle: JobHandle) -> None:
    """``on_end`` of an OIP job (Filters/OIP and Precursor pages): keep its result in the session's store."""
    oip_store().put(model_key(resolve_model_path(handle.spec.model)), handle.result)

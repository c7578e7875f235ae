"""Train page: build a CNN from a preset or the editor, train it with live curves, keep runs."""

from __future__ import annotations

from core.device import quiet_tensorflow_logs

# First of all: a deep link to a fresh server runs this file before app.py (Streamlit's pages/ folder mode).
quiet_tensorflow_logs()

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.augmentation.augment import RANGES as AUGMENT_RANGES
from core.augmentation.augment import AugmentConfig, augment_digits, augment_label
from core.augmentation.lesson import LESSON_AUGMENT, LessonConfig
from core.compare.replay import conv1_filters, read_checkpoints
from core.experiments.robustness import INVARIANCE_DIGITS, RobustnessConfig
from core.figures import activations as activation_figures
from core.figures import augmentation as augment_figures
from core.figures import common as plots
from core.figures import oip as oip_figures
from core.import_model import SCALER_TEXT, SCALERS
from core.jobs.kinds import ImportConfig, ReplayConfig, TrainJobConfig, with_seed
from core.jobs.system import JobSnapshot, JobSpec
from core.oip.search import OipConfig
from core.runs import DEFAULT_MODEL_DIR, default_runs_dir, resolve_model_path, run_name, sanitize_name
from core.runs import model_key as run_model_key
from core.spec import ACTIVATIONS, PADDINGS, PRESETS, ArchitectureSpec, ConvSpec, layer_table, validate
from core.training import CHECKPOINTS, OPTIMIZERS, SCHEDULES, TrainConfig
from pages.ui import jobs, menu, resources, widgets
from pages.ui.state import Computed, content_key, session

JOB_KEY = "train_job"
IMPORT_JOB_KEY = "import_job"
GROUP_KEY = "train_group_job"  # session: the handles of several seeds trained together
MAX_SEEDS = 5
REPLAY_JOB_KEY = "replay_job"  # the test accuracy of every checkpoint
REPLAY_OIP_JOB_KEY = "replay_oip_job"  # a layer's OIPs at one checkpoint
LESSON_JOB_KEY = "augment_lesson_job"  # the augmentation lesson: two trainings and three models measured
AUGMENT_LABELS = {
    "shift": "Shift (px)",
    "rotate": "Rotation (°)",
    "zoom": "Zoom (fraction)",
    "thickness": "Thickness (px)",
    "elastic": "Elastic (px)",
}
SAMPLE_DIGITS, SAMPLE_COPIES = 4, 7
CONV_NAMES = ("conv1", "conv2", "conv3", "conv4", "conv5")
EDITOR_PREFIX = "train_ed_"

menu.page_frame()
st.title("Train")
st.write(
    "Build the blog's CNN (or your own variant), train it on MNIST and keep every run. "
    "The model you pick in the sidebar is the one all pages use."
)


def _reset_editor() -> None:
    for key in [k for k in st.session_state if str(k).startswith(EDITOR_PREFIX)]:
        del st.session_state[key]


def _editor(base: ArchitectureSpec) -> ArchitectureSpec:
    """Widgets for every setting of the spec, initialised from ``base``; returns the edited spec."""
    n_conv = widgets.number(
        st,
        "Conv layers",
        1,
        5,
        len(base.convs),
        key=EDITOR_PREFIX + "n_conv",
        help="A 2×2 max-pool follows every conv layer but the last.",
    )
    convs = []
    for i in range(1, int(n_conv) + 1):
        ref = base.convs[min(i, len(base.convs)) - 1]
        c1, c2, c3, c4 = st.columns(4)
        filters = widgets.number(c1, f"conv{i} filters", 1, 512, ref.filters, key=f"{EDITOR_PREFIX}f{i}")
        kernel = widgets.number(c2, f"conv{i} kernel", 1, 9, ref.kernel, key=f"{EDITOR_PREFIX}k{i}")
        act = c3.selectbox(
            f"conv{i} activation",
            ACTIVATIONS,
            ACTIVATIONS.index(ref.activation),
            persist_state="session",
            key=f"{EDITOR_PREFIX}a{i}",
        )
        pad = c4.selectbox(
            f"conv{i} padding",
            PADDINGS,
            PADDINGS.index(ref.padding),
            persist_state="session",
            key=f"{EDITOR_PREFIX}p{i}",
        )
        convs.append(ConvSpec(int(filters), int(kernel), act, pad))
    c1, c2, c3, c4 = st.columns(4)
    dense_text = c1.text_input(
        "Dense layers (units, comma-separated)",
        ",".join(map(str, base.dense)),
        persist_state="session",
        key=EDITOR_PREFIX + "dense",
    )
    dense_act = c2.selectbox(
        "Dense activation",
        ACTIVATIONS,
        ACTIVATIONS.index(base.dense_activation),
        persist_state="session",
        key=EDITOR_PREFIX + "dense_act",
    )
    dropout = c3.slider(
        "Dropout after dense",
        0.0,
        0.8,
        float(base.dropout),
        0.05,
        persist_state="session",
        key=EDITOR_PREFIX + "dropout",
    )
    batch_norm = c4.checkbox(
        "Batch-norm after convs", base.batch_norm, persist_state="session", key=EDITOR_PREFIX + "bn"
    )
    try:
        dense = tuple(int(u) for u in dense_text.replace(" ", "").split(",") if u)
    except ValueError:
        raise ValueError(
            f"dense layers {dense_text!r} must be whole numbers separated by commas, e.g. 70 or 128,64"
        ) from None
    return ArchitectureSpec(tuple(convs), dense, dense_act, float(dropout), bool(batch_norm))


def _layer_frame(spec: ArchitectureSpec) -> pd.DataFrame:
    rows = layer_table(spec)
    return pd.DataFrame(
        {
            "layer": [r.name for r in rows],
            "type": [r.kind for r in rows],
            "output shape": [" × ".join(map(str, r.output_shape)) for r in rows],
            "parameters": [r.params for r in rows],
            "receptive field": [f"{r.receptive_field}×{r.receptive_field}" if r.receptive_field else "" for r in rows],
        }
    )


def _epochs_from_history(history: dict) -> list[dict]:
    n = len(history.get("loss", []))
    return [{"epoch": i + 1, **{k: v[i] for k, v in history.items() if i < len(v)}} for i in range(n)]


def _training_job(spec: ArchitectureSpec, config: TrainConfig, preset_name: str) -> JobSpec | None:
    """The training as a job (it runs in a worker; the run lands in the runs folder), or None without MNIST."""
    if resources.get_mnist() is None:
        return None
    memory = session().train
    memory.steps_per_epoch = math.ceil(min(config.train_limit or 60_000, 60_000) / config.batch_size)
    memory.job_epochs = config.epochs
    return JobSpec(
        "train", TrainJobConfig(spec, config, preset_name, runs_dir=str(default_runs_dir())), title="training"
    )


def _seed_jobs(spec: ArchitectureSpec, config: TrainConfig, preset_name: str, n: int) -> list[JobSpec] | None:
    """``n`` trainings of one spec and settings, seeds ``config.seed`` … ``config.seed + n - 1``, one job each."""
    first = _training_job(spec, config, preset_name)
    if first is None:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return [
        JobSpec(
            "train",
            TrainJobConfig(
                spec,
                with_seed(first.config, config.seed + i).config,
                preset_name,
                name=run_name(preset_name, config.seed + i, stamp),
                runs_dir=first.config.runs_dir,
            ),
            title=f"training, seed {config.seed + i}",
        )
        for i in range(n)
    ]


def _trained_group(handles) -> None:
    """Several seeds ended: show the first run, and hand all of them to the Compare page."""
    runs = [str(h.result.run_dir) for h in handles if h.result is not None and h.result.run_dir is not None]
    memory = session().train
    memory.group_runs, memory.latest = runs, "seeds"
    if runs:
        memory.view_pending = runs[0]
        session().compare.pending = runs


def _group_message() -> None:
    runs = session().train.group_runs
    if not runs or jobs.group_active(GROUP_KEY) or session().train.latest != "seeds":
        return
    names = ", ".join(Path(r).name for r in runs)
    st.success(f"{len(runs)} runs saved: {names}.", icon=":material/check_circle:")
    if len(runs) >= 2:
        st.page_link(
            "pages/compare.py",
            label="Compare them: curves, mistakes and whether they learnt the same maps",
            icon=":material/compare_arrows:",
        )


def _describe(snap: JobSnapshot) -> str:
    info = snap.info
    steps = session().train.steps_per_epoch
    if "phase" in info:
        return str(info["phase"])[:1].upper() + str(info["phase"])[1:]
    if "batch" in info:
        return (
            f"Epoch {info['epoch']} of {session().train.job_epochs or '?'} · batch "
            f"{info['batch']}/{steps} · "
            f"loss {info.get('loss', float('nan')):.4f} · accuracy {info.get('accuracy', float('nan')):.4f}"
        )
    return ""


LIVE_FIGURE_SECONDS = 5.0


def _live_curves(snap: JobSnapshot) -> None:
    # The figure is made again when an epoch ended or every few seconds, not on every refresh: each new
    # figure is drawn again by the browser, which cost as much CPU as the training when it was every second.
    memory = session().train
    cached = memory.live_figure
    now = time.monotonic()
    if cached is None or cached[0] != (snap.id, len(snap.records)) or now - cached[1] >= LIVE_FIGURE_SECONDS:
        cached = (
            (snap.id, len(snap.records)),
            now,
            plots.training_curves(snap.records, snap.batches, memory.steps_per_epoch),
        )
        memory.live_figure = cached
    widgets.chart(cached[2], key="train_live_curves")


def _trained(handle) -> None:
    """The training job ended with a run: make it the active model and the run shown below."""
    run_dir = handle.result.run_dir
    session().train.latest = "training"
    if run_dir is not None:
        session().use_model(str(run_dir))
        session().train.view_pending = str(run_dir)


def _outcome_message() -> None:
    """What the last training of this session produced (shown until the next one starts)."""
    handle = jobs.job_handle(JOB_KEY)
    if handle is None or not handle.done or handle.result is None or session().train.latest != "training":
        return
    outcome = handle.result
    if outcome.message:
        (st.warning if outcome.status == "diverged" else st.info)(outcome.message)
    if outcome.run_dir is None:
        st.error("Nothing was saved: the run diverged before finishing its first epoch.")
        return
    name = Path(outcome.run_dir).name
    active = session().active_model == str(outcome.run_dir)
    st.success(
        f"Run saved as **{name}**: test accuracy {outcome.test_accuracy * 100:.2f} % in {outcome.seconds:.1f} s "
        f"on {outcome.device}." + (" It is your active model on every page." if active else ""),
        icon=":material/check_circle:",
    )


def _safe_meta(path: str) -> tuple[dict, str | None]:
    """A run's metadata, or ({}, reason) when its run.json is missing or damaged (the page stays up)."""
    try:
        return resources.run_meta(path), None
    except (OSError, ValueError) as exc:
        return {}, str(exc)


def _run_details(path: str) -> None:
    meta, problem = _safe_meta(path)
    try:
        _draw_run_details(meta)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        problem = problem or f"{type(exc).__name__}: {exc}"
    if problem:
        st.error(f"The run {Path(path).name!r} cannot be shown: its run.json is damaged or incomplete ({problem}).")
    elif meta.get("checkpoints"):
        _replay_section(path)


@st.cache_data(max_entries=4, show_spinner="Reading the checkpoints…")
def _checkpoints(path: str, mtime_key: str):
    return read_checkpoints(path)


def _keep_replay(handle) -> None:
    outcome = handle.result
    key = run_model_key(resolve_model_path(handle.spec.model))
    store = session().train.replays
    if outcome.accuracy is not None:
        store[(key, "accuracy")] = outcome.accuracy
    if outcome.oip is not None:
        store[(key, outcome.checkpoint, outcome.oip.config.layer)] = outcome.oip


def _replay_section(path: str) -> None:
    """A slider over the run's checkpoints: conv1's filters, the test accuracy and a layer's OIPs as they were."""
    st.markdown("**Replay the training**: the network as it was at each checkpoint.")
    key = run_model_key(path)
    try:
        checkpoints = _checkpoints(path, key)
    except ValueError as exc:
        st.error(str(exc))
        return
    store = session().train.replays
    k = st.select_slider(
        "Checkpoint",
        list(range(len(checkpoints))),
        value=len(checkpoints) - 1,
        key="replay_k",
        format_func=checkpoints.label,
    )
    left, right = st.columns(2)
    with left:
        bound = max(float(np.abs(conv1_filters(checkpoints, c)).max()) for c in range(len(checkpoints)))
        widgets.chart(
            activation_figures.kernel_grid(conv1_filters(checkpoints, k), "filter", cols=8, width_px=420, bound=bound),
            key="replay_filters",
            config={"displayModeBar": False},
        )
        st.caption(
            f"conv1's filters at {checkpoints.label(k)} (blue negative, red positive; one colour scale for "
            "all checkpoints, so they can be compared)."
        )
    with right:
        accuracy = store.get((key, "accuracy"))
        if accuracy is None:
            jobs.start_button(
                REPLAY_JOB_KEY,
                "Measure the test accuracy of every checkpoint",
                lambda: (
                    JobSpec("replay", ReplayConfig(), model=path, title="test accuracy per checkpoint")
                    if resources.get_mnist() is not None
                    else None
                ),
                key="replay_acc",
                busy_label="Measuring…",
                type="secondary",
            )
            jobs.job_panel(REPLAY_JOB_KEY, on_end=_keep_replay)
        else:
            shown_layer = st.session_state.get("replay_layer", "conv1")
            without = {
                slot[1]: int((~result.has_oip).sum())
                for slot, result in store.items()
                if len(slot) == 3 and slot[0] == key and slot[2] == shown_layer
            }
            widgets.chart(
                plots.replay_curve(
                    checkpoints.positions,
                    accuracy,
                    float(checkpoints.positions[k]),
                    {float(checkpoints.positions[c]): n for c, n in without.items()},
                    shown_layer,
                ),
                key="replay_curve",
            )
    c1, c2 = st.columns([1, 2])
    layer = c1.selectbox("OIPs of", CONV_NAMES[: len(resources.bundle_at(path).spec.convs)], key="replay_layer")
    oips = store.get((key, k, layer))
    if oips is None:
        with c2:
            jobs.start_button(
                REPLAY_OIP_JOB_KEY,
                f"Compute the OIPs of {layer} at {checkpoints.label(k)}",
                lambda: JobSpec(
                    "replay",
                    ReplayConfig(k, OipConfig(layer=layer)),
                    model=path,
                    title=f"OIPs of {layer} at {checkpoints.label(k)}",
                ),
                key="replay_oip",
                busy_label="Computing…",
                type="secondary",
            )
    jobs.job_panel(REPLAY_OIP_JOB_KEY, on_end=_keep_replay, describe=jobs.describe_oip_job)
    if oips is not None:
        without = int((~oips.has_oip).sum())
        st.markdown(
            f"At {checkpoints.label(k)}, **{without} of {len(oips.maps)}** maps of {layer} have no OIP "
            "(no input drives them above zero)."
        )
        widgets.chart(
            oip_figures.gallery_figure(
                oips.best_images, oips.maps, oips.best_loss, oips.has_oip, cols=16 if len(oips.maps) > 32 else 8
            ),
            key="replay_oips",
            config={"displayModeBar": False},
        )


def _draw_imported_details(meta: dict) -> None:
    c = st.columns(4)
    c[0].metric("test accuracy", f"{meta['test_accuracy'] * 100:.2f} %", help=f"on the {meta.get('test_source')}")
    c[1].metric("parameters", f"{meta['params']:,}")
    report = meta.get("import_report") or {}
    scaler = report.get("scaler", {})
    c[2].metric(
        "pixel scaling",
        scaler.get("text") or SCALER_TEXT.get(meta.get("scaler"), "?").split(" (")[0],
        help=scaler.get("reason") or SCALER_TEXT.get(meta.get("scaler"), ""),
    )
    c[3].metric("imported from", meta.get("imported_from", "?"), help=report.get("format_text"))
    for note in meta.get("notes", []):
        st.caption(note)
    left, right = st.columns(2)
    with left:
        st.markdown("**Its layers** and the names the pages use")
        if report.get("layers"):
            rows = [
                {
                    "layer in the file": r["name"],
                    "kind": r["kind"],
                    "output": str(r["output_shape"]),
                    "here": r["became"],
                }
                for r in report["layers"]
            ]
        else:  # runs imported before the report existed
            rows = [{"layer in the file": k, "here": v} for k, v in meta.get("mapping", {}).items()]
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="train_import_mapping")
        for gap in report.get("not_shown", []):
            st.caption(f"Not shown by the pages: {gap['layer']} ({gap['kind']}): {gap['reason']}.")
        if report.get("architecture"):
            st.markdown("**As rebuilt here**")
            st.dataframe(
                pd.DataFrame(
                    [
                        {k: (str(v) if isinstance(v, list) else v) for k, v in row.items() if v is not None}
                        for row in report["architecture"]
                    ]
                ),
                hide_index=True,
                key="train_import_architecture",
            )
        if scaler.get("accuracy"):
            st.caption(
                "Accuracy on the shipped test digits with each pixel scaling: "
                + ", ".join(f"{name} {acc * 100:.1f} %" for name, acc in scaler["accuracy"].items())
                + "."
            )
    with right:
        st.markdown(f"**Confusion matrix** ({meta.get('test_source')})")
        widgets.chart(plots.confusion_heatmap(np.array(meta["confusion"])), key="train_confusion")


def _draw_run_details(meta: dict) -> None:
    if not meta:
        return
    if meta.get("imported"):
        _draw_imported_details(meta)
        return
    c = st.columns(5)
    c[0].metric("test accuracy", f"{meta['test_accuracy'] * 100:.2f} %")
    c[1].metric("parameters", f"{meta['params']:,}")
    c[2].metric("epochs", len(meta.get("epoch_seconds", [])))
    c[3].metric("wall time", f"{meta['seconds']:.1f} s")
    c[4].metric("device", meta.get("device", "?"))
    if meta.get("message"):
        st.caption(meta["message"])
    epochs_done = len(meta.get("epoch_seconds", []))
    widgets.blog_beside(
        [
            ("params", f"{meta['params']:,} parameters ({meta.get('preset', 'custom')})"),
            (
                "accuracy",
                f"{meta['test_accuracy'] * 100:.2f} % test accuracy after {epochs_done} "
                f"epoch{'s' if epochs_done != 1 else ''}",
            ),
            (
                "train_time",
                f"{meta['seconds']:.1f} s for {epochs_done} epoch{'s' if epochs_done != 1 else ''} on "
                f"{meta.get('device', '?')}",
            ),
        ],
        "The blog's article-II run beside this one",
    )
    cfg = meta.get("config", {})
    st.caption(
        f"preset {meta.get('preset', 'custom')} · {cfg.get('optimizer')} lr {cfg.get('learning_rate')} "
        f"({cfg.get('schedule')}) · batch {cfg.get('batch_size')} · L2 {cfg.get('l2')} · seed {meta.get('seed')}"
        f" · {cfg.get('train_limit') or 'all'} training digits · augmentation {augment_label(meta)}"
    )
    widgets.chart(
        plots.training_curves(_epochs_from_history(meta["history"]), meta.get("batch_history", []), 1),
        key="train_run_curves",
    )
    left, right = st.columns(2)
    with left:
        st.markdown("**Confusion matrix** (test set)")
        widgets.chart(plots.confusion_heatmap(np.array(meta["confusion"])), key="train_confusion")
    with right:
        st.markdown("**Time per epoch**")
        widgets.chart(plots.epoch_times(meta.get("epoch_seconds", [])), key="train_epoch_times")
        mis = meta.get("misclassified", [])
        st.markdown(f"**Misclassified test digits**: {len(mis)} of {len(meta.get('predictions', []))}")
        mnist = resources.get_mnist() if mis else None
        if mnist is not None and len(meta.get("predictions", [])) <= len(mnist.y_test):
            shown = mis[:24]
            preds = meta["predictions"]
            widgets.chart(
                plots.image_grid(
                    mnist.x_test[shown], [f"{mnist.y_test[i]}→{preds[i]}" for i in shown], cols=8, height_per_row=80
                ),
                key="train_misclassified",
            )
            st.caption("Title: true label → predicted label.")


@st.cache_data(max_entries=8, show_spinner=False)
def _augmented_samples(text: str, seed: int):
    """``SAMPLE_DIGITS`` shipped test digits (the blog's 4, digit 227, first) ``(N, 28, 28)`` and ``SAMPLE_COPIES``
    augmented copies of each ``(N, K, 28, 28)``: what training will see, drawn as training draws them."""
    from core.augmentation import parse_augment

    sample = resources.get_sample_digits()
    first = [int(np.flatnonzero(sample.indices == 227)[0])] if np.any(sample.indices == 227) else []
    chosen = (first + [i for i in range(len(sample.images)) if i not in first])[:SAMPLE_DIGITS]
    originals = sample.images[chosen]
    copies = augment_digits(np.repeat(originals, SAMPLE_COPIES, axis=0), parse_augment(text), seed)
    return originals, copies.reshape(len(chosen), SAMPLE_COPIES, 28, 28)


def _augment_settings() -> AugmentConfig | None:
    """The Augmentation expander: one field per range (0: off) and samples of augmented digits; None while a field
    is out of range."""
    with st.expander("Augmentation: random changes to every training batch", key="train_augment_panel"):
        st.caption(
            "Each training digit is changed anew in every epoch by a random amount up to each range: moved, turned, "
            "zoomed, its strokes thinned or thickened, bent by a smooth random field. 0 turns a change off; all 0 "
            "is the blog's training. The network sees more kinds of 4 than MNIST holds, and should then read a 4 "
            "that is moved or turned (the Experiments page shows the bundled model's 4 stays a 4 only for shifts "
            "of −3..3 px). No flips: a mirrored 2 is not a 2."
        )
        columns = st.columns(len(AUGMENT_LABELS))
        values = {}
        for column, (key, label) in zip(columns, AUGMENT_LABELS.items()):
            low, high, whole, unit = AUGMENT_RANGES[key]
            values[key] = widgets.number(
                column,
                label,
                int(low) if whole else float(low),
                int(high) if whole else float(high),
                0 if whole else 0.0,
                0.5 if key in ("shift", "elastic") else (0.05 if key == "zoom" else None),
                key=f"train_aug_{key}",
                stop=False,
                help=f"Up to this much either way: {unit}.",
            )
        if values["elastic"]:
            low, high, _, unit = AUGMENT_RANGES["sigma"]
            values["sigma"] = widgets.number(
                st,
                "Elastic smoothness (px)",
                float(low),
                float(high),
                5.0,
                key="train_aug_sigma",
                stop=False,
                help=unit,
            )
        if any(v is None for v in values.values()):
            return None
        config = AugmentConfig(**values)
        if config.enabled:
            originals, copies = _augmented_samples(config.text(), int(st.session_state.get("train_seed") or 0))
            widgets.chart(
                augment_figures.augmented_samples(originals, copies),
                key="train_augment_samples",
                config={"displayModeBar": False},
            )
            st.caption(
                f"**{config.text()}**: shipped test digits (left) and {SAMPLE_COPIES} augmented copies of each, as "
                "training will draw them. Each batch of each epoch draws new ones, from the training seed."
            )
        else:
            st.caption("Off: the digits are trained on as they are (the blog's training).")
    return config


def _lesson_job(
    augment: AugmentConfig | None, epochs: int, limit: int, test_digits: int, sweep_digits: int
) -> JobSpec | None:
    """The lesson as a job: the augmentation chosen above (or the lesson's default when it is off), with the
    learner's handwriting set when there is one."""
    if resources.get_mnist() is None:
        st.warning("The lesson needs the MNIST training digits, and they cannot be read on this server.")
        return None
    from core.augmentation import parse_augment

    chosen = augment if augment is not None and augment.enabled else parse_augment(LESSON_AUGMENT)
    config = LessonConfig(
        augment=chosen,
        epochs=epochs,
        train_limit=None if limit >= 60_000 else limit,
        seed=int(st.session_state.get("train_seed") or 42),
        robustness=RobustnessConfig(
            test_digits=None if test_digits >= 10_000 else test_digits, invariance_digits=sweep_digits
        ),
    )
    hand = session().experiments.personal_set
    inputs = {"images": hand.images, "labels": hand.labels} if hand is not None and len(hand) else {}
    session().train.lesson = None
    return JobSpec("augment-lesson", config, model=None, inputs=inputs, title="augmentation lesson")


def _handwriting_key() -> tuple[str, str]:
    hand = session().experiments.personal_set
    if hand is None or not len(hand):
        return "none", "no handwriting set"
    return "hand:" + content_key(hand.images) + content_key(hand.labels), f"your handwriting set ({len(hand)} digits)"


def _keep_lesson(handle) -> None:
    if handle.result is not None and handle.result.reports:
        key, name = _handwriting_key() if "images" in handle.spec.inputs else ("none", "no handwriting set")
        session().train.lesson = Computed.of(handle.result, DEFAULT_MODEL_DIR, input_key=key, input_name=name)


def _describe_lesson(snap: JobSnapshot) -> str:
    info = snap.info
    if "phase" in info:
        return widgets.sentence(str(info["phase"]))
    if "batch" in info:
        return (
            f"{widgets.sentence(str(info.get('model', 'training')))}: epoch {info['epoch']} · batch {info['batch']}"
            f" · loss {info.get('loss', float('nan')):.4f}"
        )
    return ""


def _lesson_section(augment: AugmentConfig | None) -> None:
    """Lesson: train article II without and with augmentation, and measure both beside the blog's model."""
    st.caption(
        "Train the blog's article-II model twice, with the same seed and epochs: once on the digits as they are, "
        "once with augmentation (the settings above; when they are off, "
        f"{LESSON_AUGMENT}). Then measure both, and the bundled blog model (5 epochs, no augmentation) as the "
        "baseline, on the test set, on test digits shifted by ±2 and ±3 px and turned by ±15° and ±25°, on the "
        "Experiments page's invariances over 200 test digits (by default), and on your handwriting set when you "
        "have one (Experiments page). Neither trained model is kept; train the one you like above."
    )
    c = st.columns(4)
    epochs = widgets.whole_number(c[0], "Epochs of each training", 1, 5, 1, key="train_lesson_epochs")
    limit = widgets.whole_number(
        c[1],
        "Training digits of each",  # not "Training digits": the form above has that label, and labels find fields
        1000,
        60000,
        60000,
        key="train_lesson_limit",
        help="1 epoch on all 60,000 digits takes about a minute per training on 2 cores; the blog trains 5.",
    )
    test_digits = widgets.whole_number(
        c[2],
        "Test digits measured",
        500,
        10000,
        2000,
        key="train_lesson_test",
        help="For the accuracy on the test set and on its shifted and turned copies (all 10,000: slower).",
    )
    sweep_digits = widgets.whole_number(
        c[3],
        "Digits for the invariances",
        20,
        1000,
        INVARIANCE_DIGITS,
        key="train_lesson_sweep",
        help="Each is shifted, turned, scaled and thickened over the Experiments page's ranges (69 copies each).",
    )
    key, name = _handwriting_key()
    st.caption(f"Handwriting: {name}." + (" Add digits on the Experiments page." if key == "none" else ""))
    jobs.start_button(
        LESSON_JOB_KEY,
        "Run the lesson",
        lambda: _lesson_job(augment, int(epochs), int(limit), int(test_digits), int(sweep_digits)),
        key="train_lesson_start",
        busy_label="The lesson is running…",
        disabled=None in (epochs, limit, test_digits, sweep_digits),
        type="secondary",
    )
    jobs.job_panel(LESSON_JOB_KEY, on_end=_keep_lesson, describe=_describe_lesson)
    kept = session().train.lesson
    if kept is None:
        return
    note = kept.stale_note(kept.model, kept.model_path, key, name)
    if note:
        st.caption(f"These results were {note}.")
    result = kept.value
    trained = " · ".join(
        f"{n} {100 * t['test_accuracy']:.2f} % ({sum(t['epoch_seconds']):.0f} s)" for n, t in result.trainings.items()
    )
    st.markdown(
        f"**{result.config.augment.text()}**, {result.config.epochs} epoch(s) on "
        f"{result.config.train_limit or 60_000:,} digits, seed {result.config.seed}: test accuracy {trained}"
    )
    widgets.chart(augment_figures.lesson_accuracies(result.reports), key="train_lesson_accuracy")
    widgets.chart(augment_figures.lesson_ranges(result.reports), key="train_lesson_ranges")
    widgets.chart(augment_figures.lesson_invariance(result.reports), key="train_lesson_invariance")


# --- Build ---------------------------------------------------------------------------------
st.subheader("1 · Architecture")
preset_name = st.selectbox(
    "Preset",
    list(PRESETS),
    persist_state="session",
    key="train_preset",
    on_change=_reset_editor,
    help="'article II' is the blog's 96,844-parameter model.",
)
spec = PRESETS[preset_name]
error = None
if st.toggle("Edit the architecture", persist_state="session", key="train_edit"):
    try:
        spec = _editor(spec)
    except ValueError as exc:
        error = str(exc)
if error is None:
    try:
        validate(spec)
    except ValueError as exc:
        error = str(exc)
if error:
    st.error(f"This architecture cannot be built: {error}")
else:
    frame = _layer_frame(spec)
    st.dataframe(frame, hide_index=True)
    st.caption(
        f"{frame['parameters'].sum():,} parameters. Receptive field: the side of the input square one "
        "neuron of the layer sees."
    )

st.subheader("2 · Training")
c = st.columns(4)
optimizer = c[0].selectbox("Optimizer", OPTIMIZERS, persist_state="session", key="train_optimizer")
# No upper bound on the widget: a browser keeps the last accepted value of a bounded field while showing the
# typed one, so 100 would silently train at the old rate. TrainConfig.validate() refuses it below, visibly.
lr = widgets.number(
    c[1],
    "Learning rate",
    0.0,
    None,
    1e-3,
    format="%.5f",
    key="train_lr",
    help="Greater than 0 and at most 10. Large rates make the loss NaN: training then stops and "
    "keeps the last finished epoch.",
)
schedule = c[2].selectbox(
    "Learning-rate schedule",
    SCHEDULES,
    persist_state="session",
    key="train_schedule",
    help="exponential: smooth decay; step: drops by the factor every N epochs",
)
l2 = widgets.number(c[3], "L2 weight penalty", 0.0, 1.0, 0.0, format="%.5f", key="train_l2")
c = st.columns(4)
epochs = widgets.whole_number(c[0], "Epochs", 1, 200, 5, key="train_epochs")
batch_size = widgets.whole_number(c[1], "Batch size", 1, 8192, 64, key="train_batch")
seed = widgets.whole_number(c[2], "Seed", 0, 2**31 - 1, 42, key="train_seed")
train_limit = widgets.whole_number(
    c[3],
    "Training digits",
    100,
    60000,
    60000,
    key="train_limit",
    help="Fewer digits train faster (a 1-epoch trial on 3,000 digits takes seconds).",
)
out_of_range = None in (epochs, batch_size, seed, train_limit)
checkpoints = st.selectbox(
    "Checkpoints for a replay",
    CHECKPOINTS,
    index=CHECKPOINTS.index("epoch+early"),
    persist_state="session",
    key="train_checkpoints",
    format_func={
        "none": "none",
        "epoch": "after every epoch",
        "epoch+early": "after every epoch and every tenth of the first",
    }.get,
    help="The weights as they were, to replay the training under the run (filters, OIPs, "
    "accuracy). About 0.2 MB each for the article-II model; they cost under 3 % of the "
    "training time.",
)
decay_rate, decay_epochs, momentum = 0.5, 2, 0.9
if schedule != "none" or optimizer == "sgd":
    c = st.columns(4)
    if schedule != "none":
        decay_rate = widgets.number(c[0], "Decay factor", 0.01, 1.0, 0.5, key="train_decay_rate")
        decay_epochs = widgets.number(c[1], "every N epochs", 1, 100, 2, key="train_decay_epochs")
    if optimizer == "sgd":
        momentum = widgets.number(c[2], "Momentum", 0.0, 0.99, 0.9, key="train_momentum")
augment = _augment_settings()
out_of_range = out_of_range or augment is None

config = TrainConfig(
    optimizer=optimizer,
    learning_rate=float(lr),
    momentum=float(momentum),
    schedule=schedule,
    decay_rate=float(decay_rate),
    decay_epochs=int(decay_epochs),
    l2=float(l2),
    epochs=int(epochs or 1),
    batch_size=int(batch_size or 1),
    seed=int(seed or 0),
    train_limit=int(train_limit or 100),
    checkpoints=checkpoints,
    augment=augment or AugmentConfig(),
)
busy = jobs.job_active(JOB_KEY)
try:
    config.validate()
    settings_error = "a number is out of range (see above)" if out_of_range else None
except ValueError as exc:
    settings_error = str(exc)
    st.error(f"These training settings cannot be used: {settings_error}")
n_runs = widgets.number(
    st,
    "Runs",
    1,
    MAX_SEEDS,
    1,
    key="train_n_runs",
    help=f"Train the same settings with seeds {config.seed}, {config.seed + 1}, …: separate jobs, in "
    "parallel when the server has free slots; then compare them on the Compare runs page "
    "(do two trainings learn the same maps?).",
)
used_preset = preset_name if not st.session_state.get("train_edit") else "custom"
if n_runs == 1:
    jobs.start_button(
        JOB_KEY,
        "Train",
        lambda: _training_job(spec, config, used_preset),
        key="train_start",
        busy_label="Training…",
        disabled=bool(error or settings_error),
        help="Runs as a job: it waits its turn when the server is busy, and you may switch pages meanwhile."
        if not busy
        else "Training is running; stop it below to change the settings.",
    )
else:
    group_busy = jobs.group_active(GROUP_KEY)
    if st.button(
        "Training…" if group_busy else f"Train {int(n_runs)} seeds",
        key="train_start_group",
        type="primary",
        disabled=bool(error or settings_error) or group_busy,
    ):
        specs = _seed_jobs(spec, config, used_preset, int(n_runs))
        if specs is not None and jobs.submit_group(GROUP_KEY, specs) is not None:
            st.rerun()
jobs.job_panel(
    JOB_KEY,
    on_end=_trained,
    describe=_describe,
    live=_live_curves,
    stop_help="Ends training after the current batch; what was trained so far is saved as a complete run.",
)
jobs.group_panel(GROUP_KEY, on_end=_trained_group, describe=_describe)
_outcome_message()
_group_message()

# --- Runs ----------------------------------------------------------------------------------
st.subheader("3 · Runs")
choices = resources.model_choices()
rows = []
for path in choices:
    meta, problem = _safe_meta(path)
    if problem or not isinstance(meta.get("test_accuracy"), (int, float)):
        rows.append({"run": Path(path).name, "status": "damaged run.json"})
        continue
    rows.append(
        {
            "run": menu.describe_model(path).split(" · ")[0],
            "test accuracy %": round(meta["test_accuracy"] * 100, 2),
            "preset": meta.get("preset", "custom"),
            "epochs": len(meta.get("epoch_seconds", [])),
            "status": meta.get("status", ""),
            "seconds": round(meta.get("seconds", 0), 1),
            "device": meta.get("device", ""),
            "created": meta.get("created", ""),
        }
    )
st.dataframe(pd.DataFrame(rows), hide_index=True, key="train_runs_table")
active = session().active_model
pending_view, session().train.view_pending = session().train.view_pending, None
if pending_view in choices:  # a training just ended: show its run (set before the widget exists)
    st.session_state["train_view_run"] = pending_view
elif st.session_state.get("train_view_run") not in choices:
    st.session_state["train_view_run"] = active if active in choices else choices[0]
view = st.selectbox("Show run", choices, format_func=menu.describe_model, persist_state="session", key="train_view_run")
if view != active:
    st.button("Use this model on all pages", key="train_use_run", on_click=session().use_model, args=(view,))
_run_details(view)


def _imported(handle) -> None:
    """An import ended with a run: make it the active model and the run shown above."""
    if handle.result.run_dir is not None:
        memory = session().train
        session().use_model(str(handle.result.run_dir))
        memory.view_pending = str(handle.result.run_dir)
        memory.imported = (handle.result.run_dir.name, handle.result.notes)
        memory.latest = "import"


def _import_spec() -> JobSpec | None:
    up = st.session_state.get("train_import_file")
    if up is None:
        return None
    name = sanitize_name(st.session_state.get("train_import_name") or Path(up.name).stem)
    mnist_ok = resources.get_mnist() is not None
    return JobSpec(
        "import-model",
        ImportConfig(up.name, st.session_state["train_import_scaler"], name, with_mnist=mnist_ok),
        inputs={"data": up.getvalue()},
        title=f"import of {up.name}",
    )


with st.expander("Import a model trained elsewhere (.keras or .h5)", key="train_import_panel"):
    st.caption(
        "A Keras model saved with `model.save(...)` as `.keras` or legacy `.h5` (told apart by content): one input "
        "of 28×28×1, 28×28 or 784 pixels; conv layers (with max or average pooling, or strides) or none at all "
        "(a dense network); Flatten or global pooling, Dense layers and a 10-way output, softmax or logits. "
        "Every layer is checked by name before Keras reads the file (a Lambda or custom layer is refused: no "
        "code from the file runs); the layers get the names the pages use (conv1, pool1, …, out), and it becomes "
        "a run like the ones trained here, with a report of what became what."
    )
    up = st.file_uploader("Model file (.keras or .h5)", type=["keras", "h5", "hdf5"], key="train_import_file")
    c = st.columns(2)
    c[0].selectbox(
        "Pixel scaling",
        SCALERS,
        persist_state="session",
        key="train_import_scaler",
        format_func=lambda k: "automatic (the one it reads test digits best with)" if k == "auto" else SCALER_TEXT[k],
        help="How raw pixels 0..255 are turned into the model's input. Most notebooks divide by 255; the "
        "blog standardizes each pixel. A Rescaling layer in the model always wins.",
    )
    c[1].text_input(
        "Run name",
        persist_state="session",
        key="train_import_name",
        placeholder=Path(up.name).stem if up else "the file's name",
    )
    jobs.start_button(
        IMPORT_JOB_KEY,
        "Import",
        _import_spec,
        key="train_import_start",
        busy_label="Importing…",
        disabled=up is None,
        type="secondary",
    )
    jobs.job_panel(IMPORT_JOB_KEY, on_end=_imported)
    done = session().train.imported
    if done and session().train.latest == "import":
        st.success(f"Imported as **{done[0]}**; it is your active model on every page.", icon=":material/check_circle:")

with st.expander("Lesson: data augmentation", key="train_lesson_panel"):
    _lesson_section(augment)

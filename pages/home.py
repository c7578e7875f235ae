"""Start page: what this app is, the active network with its layers and shapes, the blog's path through
the other pages, one click per step, and the runs this session may rename or delete (its own on a class server)."""

from __future__ import annotations

from core.device import quiet_tensorflow_logs

# First of all: a deep link to a fresh server runs this file before app.py (Streamlit's pages/ folder mode).
quiet_tensorflow_logs()

from pathlib import Path

import streamlit as st

from core.figures.network import network_diagram
from core.runs import default_runs_dir, list_runs
from core.serving.classroom import delete_as, rename_as
from pages.ui import access, menu, widgets
from pages.ui.state import model_title, session

menu.page_frame()
st.title("MNIST CNN Explorer")
st.markdown(
    "Look inside a small convolutional network that reads handwritten digits. Draw a digit and watch every map of "
    "every layer answer, find the pattern each map likes best, let the network dream on a photo, and train your "
    "own. The pages follow a blog series on a simple Keras CNN for MNIST, with the blog's figures beside yours."
)
bundle = menu.active_bundle()
if bundle is not None:
    accuracy = bundle.meta.get("test_accuracy")
    st.subheader(f"The network: {model_title(bundle.path)}")
    widgets.chart(network_diagram(bundle.spec), key="home_network", config={"displayModeBar": False})
    st.caption(
        "A 28×28 grey digit goes in on the left; each convolution (red) makes maps that answer to a small pattern, "
        "each pooling (pink) halves them, and the dense layers (blue) turn what conv3 found into 10 class "
        "probabilities (green)."
        + (f" This model reads {accuracy:.2%} of MNIST's 10,000 test digits right." if accuracy else "")
        + " Choose another model in the sidebar; every page uses it."
    )

st.subheader("The blog's path, one step per click")
STEPS = (
    ("pages/activations.py", "1 · Draw a digit and see every map", "the prediction, then every map of every layer"),
    ("pages/activations.py", "2 · Which pixels matter", "saliency, occlusion, Grad-CAM, LIME, Integrated Gradients"),
    ("pages/oip.py", "3 · What each map likes", "optimal input patterns (OIPs) by gradient ascent"),
    ("pages/precursor.py", "4 · Maps without an OIP", "coarse patterns that find one where random starts fail"),
    ("pages/deep_dream.py", "5 · Dreams", "a map or a layer of the CNN dreams on a photo"),
    ("pages/clustering.py", "6 · The cluster MLP", "k-means distances as features: a faster MLP"),
    ("pages/train.py", "7 · Train your own", "presets, an architecture editor, live curves"),
    ("pages/experiments.py", "8 · Experiments", "switch maps off, fool the network, your own handwriting"),
    ("pages/compare.py", "9 · Compare runs", "do two trainings learn the same maps?"),
)
columns = st.columns(3)
for i, (path, label, what) in enumerate(STEPS):
    with columns[i % 3]:
        st.page_link(path, label=label, icon=":material/arrow_forward:")
        st.caption(what)


# --------------------------------------------------------------------------- the session's own runs
def _rename(path: str) -> None:
    state = session().access
    new_name = (st.session_state.get("home_rename_to") or "").strip()
    try:
        target = rename_as(path, new_name, default_runs_dir(), access.nickname(), access.role() or "")
    except (ValueError, OSError) as exc:
        state.notice = ("error", str(exc))
        return
    if session().active_model == path:
        session().use_model(str(target))
    st.session_state["home_rename_to"] = ""
    state.notice = ("success", f"Renamed {Path(path).name!r} to {target.name!r}.")


def _delete(path: str) -> None:
    state = session().access
    try:
        delete_as(path, default_runs_dir(), access.nickname(), access.role() or "")
    except (ValueError, OSError) as exc:
        state.notice = ("error", str(exc))
        return
    st.session_state["home_delete_sure"] = False
    state.notice = ("success", f"Deleted {Path(path).name!r}.")


mine = [str(p) for p in list_runs(default_runs_dir()) if access.may_change_run(p)]
st.subheader("Your runs")
notice = session().access.notice
if notice:
    getattr(st, notice[0])(notice[1])
    session().access.notice = None
if not mine:
    st.caption("The runs you train or import (Train page) and your fine-tuned copies (Experiments) appear here.")
else:
    chosen = st.selectbox("Run", mine, format_func=lambda p: Path(p).name, key="home_run", persist_state="session")
    left, right = st.columns(2)
    with left:
        st.text_input("New name", key="home_rename_to", max_chars=80, help="Letters, digits, _ . -")
        st.button("Rename", key="home_rename", on_click=_rename, args=(chosen,), disabled=chosen is None)
    with right:
        sure = st.checkbox("Yes, delete this run", key="home_delete_sure")
        st.button("Delete", key="home_delete", on_click=_delete, args=(chosen,), disabled=chosen is None or not sure)

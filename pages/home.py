"""Start page: what this app is, the active network with its layers and shapes, and the blog's path through
the other pages, one click per step."""

from __future__ import annotations

import streamlit as st

from core.figures.network import network_diagram
from pages.ui import menu, widgets
from pages.ui.state import model_title

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

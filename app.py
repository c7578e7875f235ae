"""MNIST CNN Explorer: the router. Pages live in pages/, the maths in core/.

Each page draws the sidebar (active model) itself through ``pages.shared.render_sidebar()``, so a
page also works when run on its own (Streamlit's AppTest runs some pages without this router).
"""
import keras  # noqa: F401  first heavy import of every run: concurrent cold starts queue on one lock instead of deadlocking inside TensorFlow's imports
import streamlit as st

from pages import shared

st.set_page_config(page_title="MNIST CNN Explorer", page_icon=":material/pin:", layout="wide")

PAGES = [
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train", default=True),
    st.Page("pages/activations.py", title="Activations", icon=":material/biotech:", url_path="activations"),
    st.Page("pages/experiments.py", title="Experiments", icon=":material/science:", url_path="experiments"),
    st.Page("pages/oip.py", title="Filters / OIP", icon=":material/filter_center_focus:", url_path="oip"),
    st.Page("pages/precursor.py", title="Precursor", icon=":material/grid_view:", url_path="precursor"),
    st.Page("pages/clustering.py", title="Clustering-MLP", icon=":material/scatter_plot:", url_path="clustering"),
    st.Page("pages/deep_dream.py", title="Deep Dream", icon=":material/cyclone:", url_path="deep-dream"),
    st.Page("pages/compare.py", title="Compare runs", icon=":material/compare_arrows:", url_path="compare"),
]

page = st.navigation(PAGES)
with shared.server_events().span("page", page=page.url_path or "train"):
    page.run()

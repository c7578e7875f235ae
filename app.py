"""MNIST CNN Explorer: the router. Pages live in pages/, the maths in core/."""
import streamlit as st

from pages import shared

st.set_page_config(page_title="MNIST CNN Explorer", page_icon="🔢", layout="wide")

PAGES = [
    st.Page("pages/train.py", title="Train", icon="🏋️", url_path="train", default=True),
    st.Page("pages/activations.py", title="Activations", icon="🔬", url_path="activations"),
    st.Page("pages/oip.py", title="Filters / OIP", icon="🎯", url_path="oip"),
    st.Page("pages/precursor.py", title="Precursor", icon="🧩", url_path="precursor"),
    st.Page("pages/clustering.py", title="Clustering-MLP", icon="🧮", url_path="clustering"),
    st.Page("pages/deep_dream.py", title="Deep Dream", icon="🌀", url_path="deep-dream"),
]

page = st.navigation(PAGES)
shared.render_sidebar()
page.run()

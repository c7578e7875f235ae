"""Precursor page (not built yet): says what it will do."""
import streamlit as st

from pages import shared

shared.render_sidebar()

st.title("Precursor")
st.info("This page is not built yet. What it will do: A systematic search over coarse large-scale input patterns (e.g. 3×3 squares with 3 grey values: 19,683 candidates) that finds optimal input patterns for the maps where random starts fail.")

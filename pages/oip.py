"""Filters / OIP page (not built yet): says what it will do."""
import streamlit as st

st.title("Filters / OIP")
st.info("This page is not built yet. What it will do: Optimal input patterns: gradient ascent on the input image that maximises the response of a map, run for all maps of a layer at once, with a gallery to click through the results map by map.")

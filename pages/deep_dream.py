"""Deep Dream page (not built yet): says what it will do."""
import streamlit as st

st.title("Deep Dream")
st.info("This page is not built yet. What it will do: Let a map or whole layers of the MNIST CNN 'dream' on a photo of yours: gradient ascent on a coarse version of the photo, with the photo's details re-added.")

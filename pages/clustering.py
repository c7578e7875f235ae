"""Clustering-MLP page (not built yet): says what it will do."""
import streamlit as st

st.title("Clustering-MLP")
st.info("This page is not built yet. What it will do: MiniBatchKMeans clusters of MNIST in pixel space; each digit described by its distances to the K centroids and fed to a small MLP, compared with the same MLP on raw pixels.")

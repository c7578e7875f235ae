"""Activations page (not built yet): says what it will do."""
import streamlit as st

st.title("Activations")
st.info("This page is not built yet. What it will do: Draw or upload a digit (or pick one of the MNIST test digits) and see what every layer of the active CNN makes of it: all maps of conv1, pool1, conv2, pool2 and conv3, the dense layer, the filters, saliency and occlusion maps of the pixels that matter, and the receptive field of any neuron.")

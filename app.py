"""MNIST CNN Explorer: the router. Pages live in pages/ (their shared Streamlit side in pages/ui/), the maths in
core/."""

from core.device import quiet_tensorflow_logs

quiet_tensorflow_logs()  # before TensorFlow's first import: the server prints only the product's own lines
import keras  # noqa: E402, F401  first heavy import of every run: concurrent cold starts queue on one lock instead of deadlocking inside TensorFlow's imports
import streamlit as st  # noqa: E402

from pages.ui import menu, server  # noqa: E402

st.set_page_config(page_title="MNIST CNN Explorer", page_icon=":material/pin:", layout="wide")
# Once per process, before any page: GIL switch interval, Keras' session kept between runs, long-lived objects frozen.
server.tune_process()
menu.route()

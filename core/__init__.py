"""MNIST CNN Explorer core library: data, models, training and visualisation maths.

Free of Streamlit: usable from notebooks, the CLI (``python -m core``) and the dashboard.
"""

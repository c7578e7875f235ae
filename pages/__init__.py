"""Dashboard pages; ``shared`` holds the Streamlit glue they all use."""

"""The Streamlit side shared by the pages, in small modules by job (the page scripts are the files beside this
package; Streamlit lists only those).

``server``: tuning the server process, once, from app.py. ``resources``: what all sessions share (models, MNIST,
the job system, compiled engines and activation models). ``jobs``: start buttons and job panels. ``menu``: the
pages, the sidebar (menu, active model, your jobs). ``widgets``: charts and the blog box. ``state``: what a session
keeps between page switches.
"""

"""The web chat (``qa serve``), installed as ``qa.ui``. Gradio is imported by ``qa.ui.app`` only, so
``import qa`` stays light.

Public entry points live in ``qa.ui.app``: ``serve`` (what ``qa serve`` calls), ``build_app`` (the
``gr.Blocks`` for a pipeline, for tests and embedding) and ``launch``.
"""

"""The web chat (``qa serve``), installed as ``qa.ui``. Gradio is imported by this package only, so
``import qa`` stays light.

Public entry points: ``qa.ui.server.serve`` (what ``qa serve`` calls), ``qa.ui.app.build_app`` (the
``gr.Blocks`` for a pipeline, for tests and embedding) and ``qa.ui.server.launch``.
"""

"""The web chat (``qa serve``). Gradio is imported by ``ui.app`` only, so ``import qa`` stays light.

Public entry points live in ``ui.app``: ``serve`` (what ``qa serve`` calls), ``build_app`` (the
``gr.Blocks`` for a pipeline, for tests and embedding) and ``launch``.
"""

"""HTML reduced to the article: its main text, paragraph by paragraph, and the page's metadata.

``extract_article`` is the product's reader for web pages (files, uploads, links, feed entries);
``visible_text`` is the page's whole visible text, the fallback when no article is found and the
baseline ``qa eval`` compares against. The extraction libraries load only when a page is read.
"""

from qa.ingest.html.article import DEFAULT_OPTIONS, Extracted, Options, extract_article, extract_with, visible_text

__all__ = ["DEFAULT_OPTIONS", "Extracted", "Options", "extract_article", "extract_with", "visible_text"]

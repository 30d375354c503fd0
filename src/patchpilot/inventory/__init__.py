"""Inventory: what is installed on an asset, as one versioned JSON document.

``model`` holds the document (``Inventory``, schema 1), ``sources`` the pure parsers of
package databases (text in, ``Package`` values out) and ``transports`` the code that
fetches that text from a host (locally, from a file, later over SSH).
"""

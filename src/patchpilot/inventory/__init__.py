"""Inventory: what is installed on an asset, as one versioned JSON document.

``model`` holds the document (``Inventory``, schema 1), ``sources`` the pure parsers of
package databases (text in, ``Package`` values out), ``host`` the parsers of the rest of
what a host says, ``collect`` the one collection routine, and ``transports`` the code
that fetches the text from a host (locally, from a file, over SSH).
"""

"""Pure parsers of package databases: text in, ``patchpilot.models.Package`` values out.

No module here reads a file or runs a command; transports fetch the text.
"""

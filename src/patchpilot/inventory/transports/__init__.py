"""Transports: fetch the text of package databases from a host and build an Inventory."""

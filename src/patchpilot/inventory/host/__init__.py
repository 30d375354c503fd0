"""Host facts: what ``inventory.collect`` reads and runs on a host, and the pure parsers of
what comes back (identity, kernels, Python site-packages, apt's filtered indexes).

The package databases' own parsers stay in ``inventory.sources``; these modules hold the
rest of what a host says about itself.  Nothing here touches a host: ``commands`` only
names the files and commands, the others take text in and give values out.
"""

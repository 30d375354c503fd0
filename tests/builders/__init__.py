"""What several test modules build alike: estates of real advisories and inventories,
signed-in clients, server processes, the browser.

Plain functions and constants, imported by the test modules; pytest fixtures live in the
``conftest.py`` of the folder whose tests share them (or, two lines each, in the test
module over a builder here).  No test module imports another test module.
"""

"""Asset context, the CMDB side: criticality, environment, exposure, owner, service, site.

``cmdb`` parses CMDB exports (CSV, JSON, YAML) into validated :class:`CmdbRecord` values,
``context`` matches them to the assets the scans found and stores them, ``netbox`` reads
the same from NetBox.
"""

"""Asset context: CMDB parsing, matching, NetBox."""

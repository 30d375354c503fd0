"""Network devices without a package manager: what identifies them (``show version``
over SSH, discovery, SNMP, a person declaring one) as an Inventory's ``device`` part."""

"""Network discovery and device identification: nmap (live hosts, services, CPEs), SNMP
(vendor, model, serial, firmware) and the scope they may probe."""

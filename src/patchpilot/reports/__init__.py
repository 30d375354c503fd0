"""Report builders (scan output formats now; HTML, PDF, XLSX reports later)."""

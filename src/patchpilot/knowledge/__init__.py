"""The vulnerability knowledge base: feeds, version schemes, the matcher."""

"""Third-party scanner reports -> findings, under each scanner's own producer."""

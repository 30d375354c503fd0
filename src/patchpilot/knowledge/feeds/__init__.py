"""One module per upstream feed, each transforming its format into the internal schema."""

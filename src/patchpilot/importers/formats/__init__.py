"""One module per report format; each defines ``FORMAT`` (``importers.model.Format``)."""

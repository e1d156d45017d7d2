"""Data quality: the SQL validation files, one per layer, and their runner."""

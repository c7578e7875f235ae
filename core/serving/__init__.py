"""What a dashboard server needs beyond the pages: its record of what it did (``events``)."""

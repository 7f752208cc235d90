"""The demo: generated portfolios and a launcher that runs the system on the embedded defaults."""

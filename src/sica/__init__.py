"""sica."""

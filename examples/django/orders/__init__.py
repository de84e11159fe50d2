"""An orders API protected by invalidtoken-mw (Django); see ../README.md."""

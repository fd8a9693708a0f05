"""Groups of training-config fields, one module per concern."""

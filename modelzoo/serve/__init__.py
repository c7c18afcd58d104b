"""``run.py CPU|GPU --mode serve``: a trained model behind HTTP (docs/SERVE.md)."""

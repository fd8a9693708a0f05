"""Evaluation: validation images, CLIP score, stable eval loss, previews over webhooks, the run report."""

"""Drawing with the base model, shared by evaluation, the refine stage and their reports: stock
pipelines (pipelines), a training's weights applied to them (weights), grids and PNG bytes.

Sits above train (it applies the trainer's exports and checkpoints) and below evaluate and refine.
"""

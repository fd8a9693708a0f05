"""SDXL refiner specifics: the timestep range it trains on, its validation plan, and the refine stage."""

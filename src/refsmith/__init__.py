"""refsmith: organise, calibrate and build JWST calibration reference files."""

__version__ = "0.1.0"

"""Engine adapters: each engine's set-up to read and write the mesh catalog lives in its own module."""

"""Dependencies' private or unstable APIs, one module per dependency, each with a test naming the pinned version."""

"""Bundle builder and local store (the bundler issue)."""

"""Artifact stores for push and pull: file, S3, OCI (later issues)."""

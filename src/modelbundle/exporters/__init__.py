"""Bundle exporters: Docker, SageMaker, Lambda, Kubernetes (later issues)."""

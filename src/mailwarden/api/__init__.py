"""The REST face: FastAPI routes over the same services the CLI uses (`create_app`)."""

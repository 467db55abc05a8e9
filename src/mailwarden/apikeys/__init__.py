"""API keys: bearer credentials of an admin, stored hashed, narrowable, revocable."""

"""The registry of mail hosts mailwarden operates on: this machine, or others over SSH."""

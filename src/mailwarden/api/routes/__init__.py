"""One module of routes per resource; each route declares its access (see api.access)."""

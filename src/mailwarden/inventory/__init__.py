"""What exists: object counts for dashboards and metrics, and a database reachability check."""

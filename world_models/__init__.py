"""World models (hypernetwork dynamics, Losse-FTL); filled in by later issues."""

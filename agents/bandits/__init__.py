"""Bandit agents: a policy API run by one lax.scan over rounds, vmapped over seeds."""

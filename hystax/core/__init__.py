"""The bottom layer: what every other part of hystax may use, and which uses none of them.

- :mod:`.errors`: one-line errors (:class:`HystaxError`, ``require``, ``unknown_name``);
- :mod:`.nn`: network building blocks (the one :class:`MLP`, the activation table);
- :mod:`.spaces`: shapes and bounds of gymnax spaces;
- :mod:`.transitions`: a batch of (obs, action, next_obs), what world models learn from;
- :mod:`.sharding`: the seed axis over devices (and hosts);
- :mod:`.stats`: numpy statistics (bootstrap CIs, IQM, regret slopes).
"""

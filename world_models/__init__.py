"""World models: dynamics networks, continual world models (the HyperCRL hypernetwork and its
baselines, :mod:`.continual` for the API); Losse-FTL comes with a later issue.

``METHOD_NAMES`` lists the continual methods without importing them (``hystax list`` stays
light); :data:`hystax.world_models.continual.METHODS` maps them to their constructors.
"""

METHOD_NAMES = ("hnet", "hnet-chunked", "finetune", "multihead", "coreset", "multitask", "ewc",
                "si")

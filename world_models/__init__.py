"""World models: dynamics networks, continual world models (the HyperCRL hypernetwork and its
baselines; :mod:`.continual_api` for the API, :mod:`.continual_methods` for the table), and online
world models on locality-sensitive sparse
encodings (:mod:`.losse`, :mod:`.ftl`) with their MLP baselines (:mod:`.online`).

``METHOD_NAMES`` lists the continual methods and ``ONLINE_MODEL_NAMES`` the online (Dyna) world
models without importing them (``hystax list`` stays light);
:data:`hystax.world_models.continual_methods.METHODS` maps the former to their constructors and
:func:`hystax.world_models.online.make_online_model` builds the latter.
"""

METHOD_NAMES = ("hnet", "hnet-chunked", "finetune", "multihead", "coreset", "multitask", "ewc",
                "si")
ONLINE_MODEL_NAMES = ("losse", "mlp-online", "mlp-replay", "mlp-replay-reset")

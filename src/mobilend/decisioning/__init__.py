"""Credit decisioning: features, scorecard and challenger models, registry, rules, pricing.

Models (this package's modules): datasets (data and feature typing), metrics (AUC, KS, Gini,
PSI), scorecard (WoE scorecard, scaling, the TrainedModel interface), gbdt (LightGBM
challenger), reasons (reason texts and Predictions), training (CV, train, baseline),
registry (artifacts, champion/challenger routing), model_cli (`mobilend model`).
"""

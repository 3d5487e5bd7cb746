"""The model family: lmlab.models.gpt (GPTConfig, GPT) and lmlab.models.family (the registry of named
sizes, parameter and FLOP counts, build_model). Import from those modules: this package stays free of
torch so that `lmlab sizes --help` answers at once."""

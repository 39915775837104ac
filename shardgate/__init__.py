"""shardgate: the shared core (config, manifests, tokens, version ids) and the CLI."""

__version__ = "0.1.0"

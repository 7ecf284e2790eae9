"""genda: generative models and domain adaptation over one configuration-driven loop."""

__version__ = "0.1.0"

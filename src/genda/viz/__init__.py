"""Figures and text summaries drawn from tensors (t-SNE, architecture tables): a low room that
tasks and the report both use; it imports no other genda room."""

"""Evaluation and analysis: separation tables and their report, embeddings, the linear probe,
retrieval and the attention figures."""

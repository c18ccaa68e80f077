"""TriBERT and baseline models (pure nn.Modules), losses, the trainer and the checkpoint format."""

"""Data preparation: video lists, download, the synthetic set, manifest, splits, decode,
spectrograms and the clip shards with the datasets that read them."""

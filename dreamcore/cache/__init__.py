"""VAE-latent and text-embed caches in Parquet, and the BatchSource that trains from them."""

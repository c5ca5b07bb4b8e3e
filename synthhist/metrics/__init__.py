"""GAN image-quality metrics: FID, KID, precision/recall (Inception-v3 features) and fd_clf (classifier features)."""

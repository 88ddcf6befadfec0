"""Building blocks: encoders per modality, fusion, heads."""

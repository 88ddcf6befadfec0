"""Data: the batch contract, readers, AffectSynth, splits and data modules."""

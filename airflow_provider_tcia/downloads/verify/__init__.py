"""Verification of what a download receives, done while the bytes stream past (one read of every byte)."""

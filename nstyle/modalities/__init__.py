"""Data kinds: each turns files into signal tensors (N, C, *spatial) and back."""

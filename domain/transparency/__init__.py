"""The evidence transparency log: Merkle tree hashing, signed checkpoints and RFC 3161 time stamps."""

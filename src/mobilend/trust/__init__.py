"""Trust: the transparency log (Merkle tree), signing keys, contracts and e-signatures."""

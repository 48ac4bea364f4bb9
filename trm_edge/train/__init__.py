"""Training TRM as the reference does: deep supervision with the ACT carry, stablemax cross-entropy
+ 0.5 BCE halting loss, AdamATan2, sign-SGD for the puzzle table, EMA, torchrun/DDP, resumable."""

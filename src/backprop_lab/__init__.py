"""backprop-lab: neural networks and their backprop, written from scratch in numpy."""

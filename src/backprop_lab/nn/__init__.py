"""The numerical core, numpy only: activations, the network and its backprop, optimisers, the
epoch loop, ensembles and weights files. Imports nothing of the project but `errors`."""

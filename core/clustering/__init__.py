"""The blog's clustering series: k-means on MNIST pixels and the cluster-feature MLP."""

"""Which pixels make the network answer as it does: attribution methods, one module each."""

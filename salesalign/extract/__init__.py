"""Extract: sources behind one interface, and the landing of their batches into `raw.*`."""

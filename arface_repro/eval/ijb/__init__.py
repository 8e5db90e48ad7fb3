"""IJB-B / IJB-C: the meta-file reader (`meta`), template pooling (`templates`), the 1:1 verification metric
(`metric`), 1:N identification (`one_to_n`) and the protocol class (`protocol`)."""

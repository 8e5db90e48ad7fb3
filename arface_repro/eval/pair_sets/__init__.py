"""Pair sets (LFW, CALFW, CPLFW, CFP, AgeDB, insightface .bin, ...): the registry of pair-list formats
(`formats`), the k-fold verification metric (`verification`) and the protocol class (`protocol`). The
generic pair list (`PairList`, fold layouts) is a file format of `arface_repro.io.pairs`."""

"""File formats, numpy only (no torch): RecordIO, insightface .bin sets, feature stores, devkit files, result records."""

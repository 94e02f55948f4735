"""CORE-ReID: domain-adaptive person re-identification. Filled by the CORE-ReID issue."""

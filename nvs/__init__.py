"""NViST: single-image radiance fields and the novel-view CLI. Filled by the NViST issues."""

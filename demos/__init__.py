"""The Gradio demo (novel views and re-identification). Filled by the demo issue."""

"""Fair-MoE Studio model library (no Gradio, no plotting)."""

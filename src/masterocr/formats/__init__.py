"""File formats: training checkpoints, shipped safetensors weights, the exported ONNX folder, and loading a
model from any of them."""

"""Writing a model out for other runtimes: ONNX graphs (onnx) and their int8 versions (quantize)."""

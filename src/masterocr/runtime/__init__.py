"""The recognizers: one interface (base.BaseRecognizer), a PyTorch backend (torch.Recognizer), an onnxruntime
backend (onnx.OnnxRecognizer), the choice between them (select) and the LMDB benchmark evaluation."""

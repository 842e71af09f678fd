"""Export to SavedModel and TFLite, with verification against the Keras model."""

from cs231n_tf.export.exporter import FORMATS, QUANTIZE, ServingModule, TFLiteRunner, convert_tflite, export_module, export_pretrained, export_signature_tflite, export_run, pretrained_images

__all__ = ["FORMATS", "QUANTIZE", "ServingModule", "TFLiteRunner", "convert_tflite", "export_module", "export_pretrained", "export_signature_tflite", "export_run", "pretrained_images"]

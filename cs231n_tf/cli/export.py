"""``cs231n-tf export``: a run as a verified SavedModel or ``.tflite`` with a report beside it."""

DESCRIPTION = "Export a run, verify the export on the test split and write a report JSON beside it."
FORMATS = ("saved_model", "tflite")
QUANTIZE = ("none", "dynamic", "float16", "int8")


def add_arguments(p):
    p.add_argument("--run", required=True, help="run directory written by `train`")
    p.add_argument("--format", default="saved_model", choices=FORMATS, help="export format")
    p.add_argument("--quantize", default="none", choices=QUANTIZE,
                   help="TFLite post-training quantization (int8: full-integer, calibrated on training images)")
    p.add_argument("--out", help="output directory (default saved_models/<run name>/)")
    p.add_argument("--checkpoint", help="checkpoint path (default: the latest)")


def run(args):
    from cs231n_tf.export import export_run

    r = export_run(args.run, format=args.format, quantize=args.quantize, out=args.out, checkpoint=args.checkpoint)
    print(f"exported {r['format']} ({r['quantize']}) to {r['path']}: {r['size_bytes']} bytes, "
          f"accuracy {r['accuracy']:.4f} (Keras {r['keras_accuracy']:.4f}), max |diff| {r['max_abs_diff']:.3g}")
    print(f"report: {r['path'].rstrip('/')}.report.json")
    return 0

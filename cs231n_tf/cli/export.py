"""``cs231n-tf export``: a run as a verified SavedModel or ``.tflite`` with a report beside it."""

from cs231n_tf.cli.args import add_source_arguments

DESCRIPTION = ("Export a run (--run; verified on its test split) or a pretrained model (--model efficientnet_lite0; "
               "verified on shipped photos and augmented crops of them) and write a report JSON beside it.")
FORMATS = ("saved_model", "tflite")
QUANTIZE = ("none", "dynamic", "float16", "int8")


def add_arguments(p):
    add_source_arguments(p, "run directory written by `train`")
    p.add_argument("--format", default="saved_model", choices=FORMATS, help="export format")
    p.add_argument("--quantize", default="none", choices=QUANTIZE,
                   help="TFLite post-training quantization (int8: full-integer, calibrated on training images)")
    p.add_argument("--out", help="output directory (default saved_models/<run name>/ or saved_models/<model>_<weights>/)")
    p.add_argument("--checkpoint", help="checkpoint path (default: the latest)")


def run(args):
    from cs231n_tf.cli.main import forward_run
    from cs231n_tf.export import export_pretrained, export_run

    if args.run is not None:
        flags = [f"--{name}={value}" for name, value, default in (
            ("format", args.format, "saved_model"), ("quantize", args.quantize, "none"), ("out", args.out, None),
            ("checkpoint", args.checkpoint, None)) if value != default]
        code = forward_run(args.run, "export", flags)
        if code is not None:
            return code
        r = export_run(args.run, format=args.format, quantize=args.quantize, out=args.out, checkpoint=args.checkpoint)
        quality = f"accuracy {r['accuracy']:.4f} (Keras {r['keras_accuracy']:.4f})"
    else:
        r = export_pretrained(args.model, args.weights, format=args.format, quantize=args.quantize, out=args.out)
        quality = f"top-1 agreement with Keras {r['prediction_agreement']:.4f} on {r['examples']} photo crops"
    print(f"exported {r['format']} ({r['quantize']}) to {r['path']}: {r['size_bytes']} bytes, "
          f"{quality}, max |diff| {r['max_abs_diff']:.3g}")
    print(f"report: {r['path'].rstrip('/')}.report.json")
    return 0

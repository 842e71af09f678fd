"""Import-time rules between the package's layers, each checked in a fresh interpreter."""

import json
import subprocess
import sys

TERNARY_BUILDERS = ["binary_lenet300_100", "binary_lenet5", "ternary_lenet300_100", "ternary_lenet5"]


def _run(code):
    """Run ``code`` in a new Python process; return what it printed as JSON."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_models_does_not_import_compress_but_lists_its_builders():
    result = _run(
        "import json, sys\n"
        "import cs231n_tf.models as models\n"
        "before = 'cs231n_tf.compress' in sys.modules\n"
        "names = models.list_models()\n"
        "print(json.dumps({'before': before, 'names': names,\n"
        "                  'lazy': sorted(models.registry.LAZY_BUILDERS)}))\n"
    )
    assert result["before"] is False
    assert set(TERNARY_BUILDERS) <= set(result["names"])
    # Every name the registry imports on demand is really registered by its module.
    assert set(result["lazy"]) <= set(result["names"])


def test_looking_up_a_lazy_builder_imports_its_module():
    result = _run(
        "import json, sys\n"
        "import cs231n_tf.models as models\n"
        "spec = models.get_spec('ternary_lenet5')\n"
        "print(json.dumps({'module': spec.builder.__module__,\n"
        "                  'loaded': 'cs231n_tf.compress.ternary' in sys.modules}))\n"
    )
    assert result == {"module": "cs231n_tf.compress.ternary", "loaded": True}

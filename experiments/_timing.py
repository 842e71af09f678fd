"""Side-by-side timing for the benchmarks: interleaved rounds, wall and process CPU time."""

import time


def round_robin(methods, repeats):
    """``{name: [(wall, cpu), ...]}``: each ``fn()`` timed ``repeats`` times, interleaved, after a warm-up.

    Interleaving spreads background load over every method alike. ``wall`` is elapsed time;
    ``cpu`` is the CPU time of this process (all its threads) during the call, which other
    processes competing for the cores do not inflate.
    """
    for fn in methods.values():
        fn()
    times = {name: [] for name in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def tflite_latency_ms(content, image, threads, runs, warmup=20):
    """Median wall milliseconds of one LiteRT inference of ``image`` with ``threads`` threads."""
    import numpy as np

    from cs231n_tf.export.exporter import TFLiteRunner

    runner = TFLiteRunner(model_content=content, num_threads=threads)
    for _ in range(warmup):
        runner(image)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner(image)
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))

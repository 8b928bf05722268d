"""Batched matrix products pinned to the first GPU with tf.device("/GPU:0")."""

import tensorflow as tf


def handle(request: dict) -> dict:
    n = int(request.get("size", 2048))
    with tf.device("/GPU:0"):
        a = tf.random.normal((8, n, n))
        b = tf.random.normal((8, n, n))
        c = tf.matmul(a, b)
        total = float(tf.reduce_sum(c))
    return {"size": n, "sum": total}

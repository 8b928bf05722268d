import tensorflow as tf

gpus = tf.config.list_physical_devices("GPU")
kind = "GPU" if gpus else "CPU"
model = tf.keras.Sequential([tf.keras.layers.Dense(32, activation="relu"), tf.keras.layers.Dense(1)])


def handle(req):
    with tf.device("/{}:0".format(kind)):
        x = tf.constant(req["rows"], dtype=tf.float32)
        return {"y": model(x).numpy().tolist()}

// The model described by core/browser_model.py, run op by op with TensorFlow.js (tf-core + the CPU backend:
// float32, the closest to the server's results). DrawNet.load(description) → net; net.run(digit) → every layer.
(function (root) {
  "use strict";
  const tf = root.tf;

  function decode(blob) {
    const bytes = Uint8Array.from(atob(blob.data), (c) => c.charCodeAt(0));
    return { shape: blob.shape, data: new Float32Array(bytes.buffer) };
  }

  const ACTIVATE = {
    linear: (x) => x,
    relu: (x) => tf.relu(x),
    relu6: (x) => tf.relu6(x),
    sigmoid: (x) => tf.sigmoid(x),
    tanh: (x) => tf.tanh(x),
    elu: (x) => tf.elu(x),
    selu: (x) => tf.selu(x),
    softplus: (x) => tf.softplus(x),
    softmax: (x) => tf.softmax(x),
  };

  function load(description) {
    if (description.format !== 1) throw new Error(`model format ${description.format} is not 1`);
    const layers = description.layers.map((entry) => {
      if (entry.activation && !ACTIVATE[entry.activation]) throw new Error(`activation ${entry.activation}`);
      const w = {};
      for (const [k, blob] of Object.entries(entry.weights || {})) {
        const { shape, data } = decode(blob);
        w[k] = tf.keep(tf.tensor(data, shape.length ? shape : [1], "float32"));
      }
      return { ...entry, w };
    });
    const scaler = description.scaler && {
      mean: decode(description.scaler.mean).data,
      std: decode(description.scaler.std).data,
    };
    const inputShape = [1, ...description.input];

    function step(entry, x) {
      const { w } = entry;
      switch (entry.op) {
        case "conv2d": {
          let y = tf.conv2d(x, w.kernel, entry.strides, entry.padding);
          if (w.bias) y = tf.add(y, w.bias);
          return ACTIVATE[entry.activation](y);
        }
        case "maxpool":
          return tf.maxPool(x, entry.pool, entry.strides, entry.padding);
        case "avgpool":
          return tf.avgPool(x, entry.pool, entry.strides, entry.padding);
        case "gap":
          return tf.mean(x, [1, 2]);
        case "flatten":
          return tf.reshape(x, [x.shape[0], -1]);
        case "dense": {
          let y = tf.matMul(x, w.kernel);
          if (w.bias) y = tf.add(y, w.bias);
          return ACTIVATE[entry.activation](y);
        }
        case "batchnorm":
          return tf.batchNorm(x, w.mean, w.variance, w.beta, w.gamma, entry.epsilon);
        case "activation":
          return ACTIVATE[entry.activation](x);
        case "rescaling":
          return tf.add(tf.mul(x, w.scale), w.offset);
        case "normalization":
          return tf.div(tf.sub(x, w.mean), w.std);
        case "reshape":
          return tf.reshape(x, [x.shape[0], ...entry.shape]);
        default:
          throw new Error(`op ${entry.op} is not run in the browser`);
      }
    }

    // digit: 784 values 0..255 (row-major 28×28) → {outputs: {name: {shape, data}}, probabilities}
    function run(digit) {
      const x = new Float32Array(784);
      for (let i = 0; i < 784; i++) {
        const v = Math.fround(digit[i]);
        x[i] = scaler ? Math.fround(Math.fround(v - scaler.mean[i]) / scaler.std[i]) : v;
      }
      const tensors = tf.tidy(() => {
        let t = tf.tensor(x, inputShape, "float32");
        const out = {};
        for (const entry of layers) {
          t = step(entry, t);
          out[entry.name] = t;
        }
        return out;
      });
      const outputs = {};
      for (const [name, t] of Object.entries(tensors)) {
        outputs[name] = { shape: t.shape.slice(1), data: t.dataSync() };
        t.dispose();
      }
      const last = layers[layers.length - 1].name;
      return { outputs, probabilities: Array.from(outputs[last].data) };
    }

    function dispose() {
      for (const entry of layers) for (const t of Object.values(entry.w)) t.dispose();
    }

    return { run, dispose, names: layers.map((e) => e.name) };
  }

  async function ready() {
    await tf.setBackend("cpu");
    await tf.ready();
  }

  root.DrawNet = { load, ready };
})(typeof window !== "undefined" ? window : globalThis);

"""A recurrent example: an LSTM that learns which token a sequence holds most of.

Sequences of 2 to ``max_length`` tokens from a vocabulary of ``vocabulary`` symbols are
padded to ``max_length`` and come with a ``(batch, time)`` mask; the label is the most
frequent token (ties broken towards the smaller token). The network embeds the tokens,
runs a masked LSTM, keeps its last state and classifies it::

    tokens (batch, time) int32 -> EmbeddingLayer -> LSTMLayer(mask_input=mask,
    only_return_final=True) -> DenseLayer(softmax)

``python -m forge.examples.sequence --output out/sequence.npz`` trains it, prints the
held-out accuracy, and exports a bundle that ``forge serve`` runs; a request sends both
inputs::

    {"inputs": {"tokens": [[2, 0, 2, 1, 0, 0]], "mask": [[1, 1, 1, 0, 0, 0]]}}
"""
import argparse
import sys

import numpy as np
import pytensor
import pytensor.tensor as T

import forge
from forge import layers as L

__all__ = ["make_data", "build_network", "train", "accuracy", "main"]


def make_data(count, vocabulary=3, max_length=8, seed=0):
    """(tokens int32 (count, max_length), mask float32 (count, max_length), labels int32)."""
    rng = np.random.RandomState(seed)
    lengths = rng.randint(2, max_length + 1, size=count)
    tokens = rng.randint(0, vocabulary, size=(count, max_length)).astype(np.int32)
    mask = (np.arange(max_length)[None, :] < lengths[:, None]).astype(np.float32)
    tokens[mask == 0] = 0  # padding is a real token: only the mask tells it apart
    counts = np.stack([((tokens == v) & (mask == 1)).sum(axis=1) for v in range(vocabulary)],
                      axis=1)
    return tokens, mask, counts.argmax(axis=1).astype(np.int32)


def build_network(vocabulary=3, max_length=8, embedding=8, units=24):
    """Embedding -> masked LSTM (last state) -> softmax; returns the output layer."""
    l_tokens = L.InputLayer((None, max_length), input_var=T.imatrix("tokens"), name="tokens")
    l_mask = L.InputLayer((None, max_length), name="mask")
    l_embed = L.EmbeddingLayer(l_tokens, vocabulary, embedding, name="embed")
    l_lstm = L.LSTMLayer(l_embed, units, mask_input=l_mask, only_return_final=True,
                         grad_clipping=10.0, name="lstm")
    return L.DenseLayer(l_lstm, vocabulary, nonlinearity=forge.nonlinearities.softmax,
                        name="probs")


def _inputs(network):
    by_name = {lay.name: lay for lay in L.get_all_layers(network)}
    return by_name["tokens"].input_var, by_name["mask"].input_var


def train(network, tokens, mask, labels, epochs=30, batch_size=64, learning_rate=0.01,
          mode=None, seed=0):
    """Train with Adam; return ``predict(tokens, mask) -> probabilities``."""
    tokens_var, mask_var = _inputs(network)
    y = T.ivector("y")
    probs = L.get_output(network)
    loss = forge.objectives.categorical_crossentropy(probs, y).mean()
    params = L.get_all_params(network, trainable=True)
    updates = forge.updates.adam(loss, params, learning_rate=learning_rate)
    step = pytensor.function([tokens_var, mask_var, y], loss, updates=updates, mode=mode)
    rng = np.random.RandomState(seed)
    for _ in range(epochs):
        order = rng.permutation(len(tokens))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            batch = order[start:start + batch_size]
            step(tokens[batch], mask[batch], labels[batch])
    return pytensor.function([tokens_var, mask_var],
                             L.get_output(network, deterministic=True), mode=mode)


def accuracy(predict, tokens, mask, labels):
    return float(np.mean(predict(tokens, mask).argmax(axis=1) == labels))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="out/sequence.npz")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--mode", default=None, help="PyTensor mode (e.g. JAX, NUMBA)")
    args = parser.parse_args(argv)
    forge.random.set_rng(np.random.RandomState(0))
    tokens, mask, labels = make_data(1024, seed=0)
    test = make_data(256, seed=1)
    network = build_network()
    predict = train(network, tokens, mask, labels, epochs=args.epochs, mode=args.mode)
    print(f"held-out accuracy: {accuracy(predict, *test):.3f}")
    manifest = forge.export(network, args.output, metadata={"labels": ["0", "1", "2"]})
    print(f"exported {args.output} (parity error {manifest['parity']['max_rel_error']:.2g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

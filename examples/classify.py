"""A bidirectional LSTM sentiment classifier trained end to end with fusedrnn alone.

The data is synthetic, IMDB-style short reviews: no labelled text corpus installs offline
from PyPI (IMDB, SST and the NLTK corpora all download their data at run time), so the
script generates one. Reviews are 1, 3 or 5 clauses of filler words around a sentiment word
("the acting was great", "the plot is not good", "i never found it boring") and the label is
the majority polarity of the clauses, where a negator ("not", "never", "hardly") flips the
clause after it. Word counts alone cannot solve this: "not good" and "good" share their
sentiment word, so the bag-of-words baseline printed at the end stays well short of the
LSTM. Reviews have different lengths (4-40 words), passed through ``lengths``, so the
padding is never read (PyTorch's packed-sequence semantics without the packing).

Model: embedding (vocabulary x 16) -> bidirectional LSTM (hidden 32, batch_first) -> the
final forward and backward states, concatenated -> linear -> logit; binary cross-entropy,
Adam. Prints progress and accuracies; saves examples/classify.png. Needs matplotlib
(``pip install ".[examples]"``). About 30 s on 2 cores.
"""

import argparse
import pathlib
import sys
import time

import numpy as np

import fusedrnn
from fusedrnn.optim import Adam, clip_grad_norm_

HERE = pathlib.Path(__file__).resolve().parent

# --------------------------------------------------------------------------------------
# Synthetic reviews
# --------------------------------------------------------------------------------------

POSITIVE = "good great excellent wonderful fun moving brilliant superb charming clever".split()
NEGATIVE = "bad awful boring terrible dull weak clumsy tedious bland silly".split()
NEGATORS = "not never hardly".split()
SUBJECTS = ["the movie", "the film", "the plot", "the acting", "the story", "the cast",
            "the ending", "the music", "this one", "the script"]
VERBS = ["was", "is", "felt", "seemed", "looked"]
OPENERS = ["honestly", "overall", "well", "i think", "to me", "sadly", "frankly"]
JOINERS = ["and", "but", "yet", "while", "although"]
PAD = "<pad>"
VOCAB = [PAD] + sorted(set(" ".join(POSITIVE + NEGATIVE + NEGATORS + SUBJECTS + VERBS
                                    + OPENERS + JOINERS + ["very", "really", "quite",
                                                           "i", "found", "it"]).split()))
INDEX = {w: i for i, w in enumerate(VOCAB)}


def clause(rng):
    """One clause and its polarity (+1 / -1)."""
    positive = rng.random() < 0.5
    word = rng.choice(POSITIVE if positive else NEGATIVE)
    negated = rng.random() < 0.4
    if rng.random() < 0.3:
        words = ["i"] + (["never"] if negated else []) + ["found", "it"]
    else:
        words = rng.choice(SUBJECTS).split() + [rng.choice(VERBS)]
        if negated:
            words.append(rng.choice(NEGATORS))
    if rng.random() < 0.3:
        words.append(rng.choice(["very", "really", "quite"]))
    words.append(word)
    return words, (1 if positive else -1) * (-1 if negated else 1)


def review(rng):
    n = rng.choice([1, 3, 5], p=[0.3, 0.4, 0.3])  # odd: the majority is always defined
    words, total = [], 0
    if rng.random() < 0.3:
        words.append(rng.choice(OPENERS))
    for k in range(n):
        if k:
            words.append(rng.choice(JOINERS))
        w, polarity = clause(rng)
        words += w
        total += polarity
    return " ".join(words).split(), int(total > 0)


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    reviews = [review(rng) for _ in range(n)]
    lengths = np.array([len(w) for w, _ in reviews])
    tokens = np.zeros((n, lengths.max()), np.int64)  # batch-first, padded with <pad> = 0
    for i, (words, _) in enumerate(reviews):
        tokens[i, :len(words)] = [INDEX[w] for w in words]
    labels = np.array([y for _, y in reviews], np.float32)
    return tokens, lengths, labels, [" ".join(w) for w, _ in reviews]


# --------------------------------------------------------------------------------------
# Model with its hand-written backward
# --------------------------------------------------------------------------------------


class Classifier:
    def __init__(self, vocab, embed=16, hidden=32, seed=0):
        rng = np.random.default_rng(seed)
        self.lstm = fusedrnn.LSTM(embed, hidden, batch_first=True, bidirectional=True,
                                  seed=seed)
        k = 1 / np.sqrt(2 * hidden)
        self.own = {"embedding": rng.standard_normal((vocab, embed)).astype(np.float32),
                    "head.weight": rng.uniform(-k, k, (1, 2 * hidden)).astype(np.float32),
                    "head.bias": np.zeros(1, np.float32)}
        self.params = {**{"lstm." + n: p for n, p in self.lstm.state_dict().items()},
                       **self.own}

    def num_parameters(self):
        return sum(p.size for p in self.params.values())

    def logits(self, tokens, lengths):
        self._tokens = tokens
        x = self.own["embedding"][tokens]  # (B, T, E)
        _, (hn, _) = self.lstm(x, lengths=lengths)
        # hn (2, B, H): [0] forward state after each review's last word, [1] the reverse
        # direction's state after reading back to the first word.
        self._features = np.concatenate([hn[0], hn[1]], axis=1)  # (B, 2H)
        return self._features @ self.own["head.weight"][0] + self.own["head.bias"][0]

    def backward(self, dlogits):
        w = self.own["head.weight"]
        dfeat = dlogits[:, None] * w  # (B, 2H)
        H = self.lstm.hidden_size
        dhn = np.stack([dfeat[:, :H], dfeat[:, H:]])  # (2, B, H)
        dx, _ = self.lstm.backward(None, (dhn, None))  # dx (B, T, E)
        dembedding = np.zeros_like(self.own["embedding"])
        np.add.at(dembedding, self._tokens, dx)  # padded positions get dx = 0
        grads = {"lstm." + n: g for n, g in self.lstm.grads.items()}
        grads.update({"embedding": dembedding,
                      "head.weight": (dlogits @ self._features)[None],
                      "head.bias": np.array([dlogits.sum()], np.float32)})
        return grads

    def predict(self, tokens, lengths):
        self.lstm.eval()
        try:
            return self.logits(tokens, lengths) > 0
        finally:
            self.lstm.train()


def sigmoid(a):
    return 0.5 * (1 + np.tanh(0.5 * a))


def bag_of_words_baseline(train, test, vocab, iterations=15, ridge=1e-3):
    """Logistic regression on word counts (fitted by Newton's method): the best an
    order-blind model does here."""
    def counts(tokens, lengths):
        c = np.zeros((len(tokens), vocab + 1))
        for i, (t, n) in enumerate(zip(tokens, lengths)):
            np.add.at(c[i], t[:n], 1.0)
        c[:, -1] = 1.0  # intercept
        return c

    x, y = counts(*train[:2]), train[2]
    w = np.zeros(vocab + 1)
    for _ in range(iterations):
        p = sigmoid(x @ w)
        hessian = (x * (p * (1 - p))[:, None]).T @ x + ridge * np.eye(vocab + 1)
        w -= np.linalg.solve(hessian, x.T @ (p - y) + ridge * w)
    return float(((counts(*test[:2]) @ w > 0) == test[2]).mean())


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--out", default=str(HERE / "classify.png"))
    args = parser.parse_args(argv)

    train = make_data(8000, seed=1)
    test = make_data(2000, seed=2)
    print(f"synthetic reviews: {len(train[0])} training, {len(test[0])} test, vocabulary "
          f"{len(VOCAB)}, lengths {train[1].min()}-{train[1].max()} words; e.g.")
    for text, label in zip(train[3][:4], train[2][:4]):
        print(f"  {'+' if label else '-'} {text}")

    model = Classifier(len(VOCAB))
    print(f"model: embedding {len(VOCAB)}x16 -> {model.lstm!r} -> linear; "
          f"{model.num_parameters():,} parameters")
    opt = Adam(model.params, lr=3e-3)
    rng = np.random.default_rng(0)
    history, elapsed = [], 0.0
    for step in range(1, args.steps + 1):
        start = time.perf_counter()
        i = rng.integers(0, len(train[0]), args.batch)
        lengths = train[1][i]
        tokens = train[0][i, :lengths.max()]  # trim the batch to its longest review
        logits = model.logits(tokens, lengths)
        p = sigmoid(logits)
        y = train[2][i]
        loss = float(-np.mean(y * np.log(p + 1e-7) + (1 - y) * np.log(1 - p + 1e-7)))
        grads = model.backward((p - y) / len(y))  # d mean BCE / d logits
        clip_grad_norm_(grads, 5.0)
        opt.step(grads)
        elapsed += time.perf_counter() - start
        if step % 50 == 0 or step == args.steps:
            acc = float((model.predict(test[0], test[1]) == test[2]).mean())
            history.append((step, elapsed, loss, acc))
            line = (f"  step {step:>4}/{args.steps}  loss {loss:.3f}  test accuracy {acc:.3f}"
                    f"  ({elapsed:.1f}s)")
            if sys.stdout.isatty():  # redraw one line on a terminal, print 10 lines elsewhere
                print("\r" + line, end="\n" if step == args.steps else "", flush=True)
            elif step % max(1, args.steps // 10) < 50 or step == args.steps:
                print(line, flush=True)
    bow = bag_of_words_baseline(train, test, len(VOCAB))
    acc = history[-1][3]
    print(f"\n{'model':<32} {'test accuracy':>13}")
    print(f"{'bidirectional LSTM (fusedrnn)':<32} {acc:>13.3f}   trained in {elapsed:.1f}s")
    print(f"{'bag of words + logistic reg.':<32} {bow:>13.3f}")
    print(f"{'majority class':<32} {max(test[2].mean(), 1 - test[2].mean()):>13.3f}")

    wrong = np.flatnonzero(model.predict(test[0], test[1]) != test[2])[:3]
    if len(wrong):
        print("some test reviews it gets wrong:")
        for j in wrong:
            print(f"  {'+' if test[2][j] else '-'} {test[3][j]}")
    plot(history, bow, args.out)


def plot(history, bow, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    step, seconds, loss, acc = map(np.array, zip(*history))
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    a.plot(step, loss, color="tab:blue")
    a.set_xlabel("Adam step (batch of 64 reviews)")
    a.set_ylabel("training loss (BCE)")
    a.set_title("bidirectional LSTM: training loss")
    b.plot(seconds, acc, color="tab:blue", label="bidirectional LSTM")
    b.axhline(bow, color="tab:red", ls="--", label="bag of words")
    b.set_xlabel("training time (s)")
    b.set_ylabel("test accuracy")
    b.set_ylim(0.4, 1.0)
    b.set_title("test accuracy vs training time")
    b.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    print(f"saved {path}")


if __name__ == "__main__":
    main()

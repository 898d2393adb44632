"""Text benchmark: Rotten Tomatoes split by movie, Ember's classifiers against TF-IDF references,
and tokenisation throughput against plain ``spacy.blank("en")``.

Stages (each timed):

1. references: TF-IDF word 1-2-grams + logistic regression, and word + char n-grams
   (scikit-learn; skipped when it is not installed);
2. tokenisation throughput on the Austen corpus: ``Tokenizer.tokenize_many`` with 2 processes
   (rules included; also 1 process) against ``spacy.blank("en").tokenizer.pipe`` in one
   process, the same text, every rate counted in plain spaCy's tokens, medians of 3
   interleaved runs;
3. the default AWD-LSTM classifier trained from scratch;
4. ULMFiT: an AWD-LSTM language model pretrained on Austen (all of it by default, one epoch),
   fine-tuned on the review texts (``--tune-texts all``: training and validation texts without
   their labels, as ULMFiT does; ``train``: training texts only), then the classifier on the
   transferred encoder, every layer trained with one cycle (3b); ``--gradual`` adds ULMFiT's
   gradual unfreezing (3a) for comparison. With ``--backwards`` (the default) the same three
   stages run again on reversed texts and the classifiers' probabilities are averaged
   (stage 4, ULMFiT's forward + backward ensemble; ``--cls-seeds N`` trains N classifiers per
   direction on the same encoder and averages them all); the ULMFiT total counts every stage.

The split is GroupShuffleSplit(test_size=0.2, random_state=0) over the ``movie`` column (the
reference figures in ../shared/data/README.md use it). One vocab, built on the Austen corpus
and the training reviews, serves every stage (a small departure from ULMFiT, which pretrains on
Wikipedia with its own vocab).

Usage::

    flock /tmp/ember-bench.lock .venv/bin/python bench/text.py            # full, ~15-20 min
    .venv/bin/python bench/text.py --smoke                                # seconds, bundled sample
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from pathlib import Path

import numpy as np

import ember
from ember_text import (
    LanguageModelData,
    Perplexity,
    ResetState,
    TextData,
    Tokenizer,
    Vocab,
    average_preds,
    fine_tune_classifier,
    language_model,
    load_rotten_tomatoes,
    save_encoder,
    text_classifier,
)

REPO = Path(__file__).resolve().parent.parent


def data_dir(given: Path | None) -> Path | None:
    """``--data``, then ``$EMBER_DATA``, then ``../shared/data`` when present."""
    for candidate in (given, os.environ.get("EMBER_DATA"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def add_row(rows: list[list[str]], row: list[str]) -> None:
    """Add a table row and report it on stderr at once (a long run shows its progress)."""
    rows.append(row)
    print(f"[{time.strftime('%H:%M:%S')}] " + " | ".join(row), file=sys.stderr, flush=True)


def movie_split(movies: list[str], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """80/20 split grouped by movie (scikit-learn's GroupShuffleSplit when available)."""
    try:
        from sklearn.model_selection import GroupShuffleSplit

        splitter = GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=seed)
        train, valid = next(splitter.split(np.zeros(len(movies)), groups=movies))
        return np.sort(train), np.sort(valid)
    except ImportError:
        unique = sorted(set(movies))
        chosen = set(np.random.default_rng(seed).permutation(unique)[: round(0.2 * len(unique))])
        flags = np.array([movie in chosen for movie in movies])
        return np.nonzero(~flags)[0], np.nonzero(flags)[0]


def references(texts: list[str], labels: list[str], train: np.ndarray, valid: np.ndarray
               ) -> dict[str, float]:
    """TF-IDF + logistic regression accuracies (empty when scikit-learn is missing)."""
    try:
        from scipy.sparse import hstack
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        return {}
    y = np.asarray(labels)
    train_texts, valid_texts = [texts[i] for i in train], [texts[i] for i in valid]
    results = {}
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    model = LogisticRegression(max_iter=2000, C=4.0)
    model.fit(words.fit_transform(train_texts), y[train])
    results["tfidf_word"] = float((model.predict(words.transform(valid_texts)) == y[valid]).mean())
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
    x_train = hstack([words.transform(train_texts), chars.fit_transform(train_texts)]).tocsr()
    x_valid = hstack([words.transform(valid_texts), chars.transform(valid_texts)]).tocsr()
    model = LogisticRegression(max_iter=2000, C=4.0).fit(x_train, y[train])
    results["tfidf_word_char"] = float((model.predict(x_valid) == y[valid]).mean())
    return results


def read_austen(folder: Path) -> list[str]:
    """Non-empty lines of the six novels, joined into paragraphs."""
    paragraphs: list[str] = []
    for file in sorted(folder.glob("*.txt.gz")):
        current: list[str] = []
        with gzip.open(file, "rt", encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    current.append(line.strip())
                elif current:
                    paragraphs.append(" ".join(current))
                    current = []
        if current:
            paragraphs.append(" ".join(current))
    return paragraphs


def throughput(corpus: list[str], n_workers: int, repeats: int = 3
               ) -> tuple[float, float, float, int]:
    """Tokens per second on ``corpus``: ours with rules in ``n_workers`` processes, ours in one
    process, and plain spaCy in one process (token texts as lists, the form a model pipeline
    needs). Every rate counts plain spaCy's tokens (ours adds rule tokens, which are not
    counted), so the ratios are ratios of times on the same text. Each tokenizer is built
    before its clock starts (ours with a cold memo every time), the three run interleaved
    ``repeats`` times, and the medians are returned."""
    import spacy

    times: dict[str, list[float]] = {"plain": [], "ours": [], "ours_1": []}
    n_tokens = 0
    for _ in range(repeats):
        plain = spacy.blank("en").tokenizer
        start = time.perf_counter()
        n_tokens = sum(len([token.text for token in doc])
                       for doc in plain.pipe(corpus, batch_size=256))
        times["plain"].append(time.perf_counter() - start)
        for name, workers in (("ours", n_workers), ("ours_1", 1)):
            ours = Tokenizer()
            assert ours.spacy_tokenizer is not None  # built outside the clock, like plain's
            start = time.perf_counter()
            ours.tokenize_many(corpus, n_workers=workers)
            times[name].append(time.perf_counter() - start)
    rates = {name: n_tokens / float(np.median(values)) for name, values in times.items()}
    return rates["ours"], rates["ours_1"], rates["plain"], n_tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--lm-epochs", type=int, default=1)
    parser.add_argument("--lm-tokens", type=int, default=1_000_000,
                        help="Austen tokens used for pretraining (time budget; all ~937k)")
    parser.add_argument("--lm-lr", type=float, default=5e-3)
    parser.add_argument("--tune-epochs", type=int, default=None,
                        help="epochs of LM fine-tuning on the training reviews (default: "
                             "--lm-epochs)")
    parser.add_argument("--tune-lr", type=float, default=3e-3)
    parser.add_argument("--tune-texts", choices=["all", "train"], default="all",
                        help="review texts for LM fine-tuning: all (train + valid texts, "
                             "without labels, as ULMFiT does) or only the training texts")
    parser.add_argument("--backwards", action=argparse.BooleanOptionalAction, default=True,
                        help="also train the backward LM and classifier and average the two "
                             "classifiers' probabilities (ULMFiT's ensemble)")
    parser.add_argument("--cls-seeds", type=int, default=1,
                        help="classifiers trained per direction (seeds 0, 1, ...) on the same "
                             "encoder; all of them are averaged")
    parser.add_argument("--pool-layers", choices=["last", "all"], default="last",
                        help="ULMFiT classifier pools the encoder's last layer (ULMFiT) or "
                             "every layer")
    parser.add_argument("--emb-size", type=int, default=64)
    parser.add_argument("--hidden-size", type=int, default=192)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--cls-lr", type=float, default=3e-3,
                        help="classifier learning rate (scratch and ULMFiT 3b)")
    parser.add_argument("--drop-mult", type=float, default=0.5,
                        help="classifier dropout multiplier (ULMFiT's dropouts scaled)")
    parser.add_argument("--gradual", action="store_true",
                        help="also run ULMFiT's gradual unfreezing (3a; ~4 more minutes)")
    parser.add_argument("--tokenize-only", action="store_true",
                        help="only the tokenisation throughput (a minute or two)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest for small LSTMs on shared CPUs)")
    args = parser.parse_args(argv)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)


def run(args: argparse.Namespace) -> int:
    """All stages; prints the tables and RESULT lines."""
    folder = data_dir(args.data)
    smoke = args.smoke or folder is None
    if smoke:
        texts, labels, movies = load_rotten_tomatoes()
        texts, labels, movies = texts[:500], labels[:500], movies[:500]
        austen = texts[:300]
        epochs, lm_epochs, emb = 1, 1, {"emb_size": 32, "hidden_size": 64, "n_layers": 2}
    else:
        texts, labels, movies = load_rotten_tomatoes(folder / "rotten-tomatoes" /
                                                     "reviews.csv.gz")
        austen = read_austen(folder / "austen")
        epochs, lm_epochs = args.epochs, args.lm_epochs
        emb = {"emb_size": args.emb_size, "hidden_size": args.hidden_size, "n_layers": 2}
    train, valid = movie_split(movies)
    is_valid = np.zeros(len(texts), dtype=bool)
    is_valid[valid] = True
    majority = max(np.mean(np.asarray(labels)[valid] == c) for c in set(labels))
    rows: list[list[str]] = []
    results: list[str] = []

    start = time.perf_counter()
    reference = references(texts, labels, train, valid)
    reference_seconds = time.perf_counter() - start
    for name, value in reference.items():
        add_row(rows, [f"reference: {name} + logistic regression", f"{value:.4f}",
                     f"{reference_seconds:.1f}"])

    load_before = os.getloadavg()[0]
    our_rate, our_rate_1, plain_rate, n_tokens = throughput(austen, n_workers=2,
                                                            repeats=1 if smoke else 3)
    load_after = os.getloadavg()[0]
    print(f"tokens/s: ours 2 processes {our_rate:,.0f}, 1 process {our_rate_1:,.0f}, plain "
          f"{plain_rate:,.0f}", file=sys.stderr, flush=True)
    results.append(f"RESULT text_tokenize_speedup {our_rate / plain_rate:.3f} x "
                   f"baseline=1.0")
    throughput_table = table(["tokenizer", "tokens / s", "vs plain spaCy"], [
        ["ember_text Tokenizer, rules, 2 processes", f"{our_rate:,.0f}",
         f"{our_rate / plain_rate:.2f}x"],
        ["ember_text Tokenizer, rules, 1 process", f"{our_rate_1:,.0f}",
         f"{our_rate_1 / plain_rate:.2f}x"],
        ["spacy.blank('en') tokenizer, 1 process", f"{plain_rate:,.0f}", "1.00x"]])
    throughput_title = (
        f"Tokenisation on {'Austen' if not smoke else 'the sample'} ({n_tokens:,} spaCy "
        f"tokens, counted for every row; medians of {1 if smoke else 3} interleaved runs; "
        f"load average {load_before:.1f} before, {load_after:.1f} after):\n")
    if args.tokenize_only:
        print(throughput_title)
        print(throughput_table)
        print()
        for line in results:
            print(line)
        return 0

    # one vocab for every stage: Austen + training reviews
    tokenizer = Tokenizer()
    austen_tokens = tokenizer.tokenize_many(austen, n_workers=2)
    train_tokens = tokenizer.tokenize_many([texts[i] for i in train], n_workers=1)
    vocab = Vocab.build(austen_tokens + train_tokens, min_freq=3, max_size=8000)

    ember.seed(0)
    start = time.perf_counter()
    forward_data = TextData.from_texts(texts, labels, is_valid=is_valid, vocab=vocab, bs=64)
    learn = ember.learner(forward_data, model=text_classifier(forward_data,
                                                              drop_mult=args.drop_mult, **emb),
                          quiet=True)
    learn.fit_one_cycle(epochs, args.cls_lr)
    scratch = learn.validate()["accuracy"]
    scratch_seconds = time.perf_counter() - start
    add_row(rows, [f"ember AWD-LSTM classifier from scratch ({epochs} epochs)", f"{scratch:.4f}",
                 f"{scratch_seconds:.1f}"])

    kept, count = [], 0
    for paragraph, tokens in zip(austen, austen_tokens):
        if count >= args.lm_tokens:
            break
        kept.append(paragraph)
        count += len(tokens)
    tune_texts = [texts[i] for i in (train if args.tune_texts == "train" else range(len(texts)))]
    tune_epochs = lm_epochs if args.tune_epochs is None or smoke else args.tune_epochs
    directions = [False, True] if args.backwards else [False]
    classifiers, stage_seconds, sample = [], 0.0, ""
    gradual, gradual_seconds = -1.0, 0.0
    for backwards in directions:
        name = "backward" if backwards else "forward"
        ember.seed(0)
        start = time.perf_counter()
        lm_data = LanguageModelData.from_texts(kept, bs=32, bptt=60, vocab=vocab, valid_pct=0.05,
                                               backwards=backwards)
        lm = ember.learner(lm_data, model=language_model(lm_data, **emb), quiet=True,
                           metrics=[Perplexity()], cbs=[ResetState()])
        lm.fit_one_cycle(lm_epochs, args.lm_lr)
        pretrain = lm.validate()
        seconds = time.perf_counter() - start
        stage_seconds += seconds
        add_row(rows, [f"ULMFiT 1: {name} LM on Austen ({count:,} tokens, {lm_epochs} ep.)",
                       f"ppl {pretrain['perplexity']:.1f}", f"{seconds:.1f}"])

        start = time.perf_counter()
        review_lm = LanguageModelData.from_texts(tune_texts, bs=32, bptt=60, vocab=vocab,
                                                 valid_pct=0.1, backwards=backwards)
        tuned = ember.learner(review_lm, model=lm.model, quiet=True, metrics=[Perplexity()],
                              cbs=[ResetState()])
        tuned.fit_one_cycle(max(1, tune_epochs), args.tune_lr)
        tuned_result = tuned.validate()
        seconds = time.perf_counter() - start
        stage_seconds += seconds
        add_row(rows, [f"ULMFiT 2: {name} LM fine-tuned on {args.tune_texts} review texts "
                       f"({len(tune_texts):,}, {tune_epochs} ep.)",
                       f"ppl {tuned_result['perplexity']:.1f}", f"{seconds:.1f}"])
        if not backwards:
            sample = tuned.predict("This movie is", n_words=12, temperature=0.7, seed=0)

        encoder_file = save_encoder(tuned, Path("/tmp") /
                                    f"ember-bench-encoder-{os.getpid()}-{name}.st")
        data = (TextData.from_texts(texts, labels, is_valid=is_valid, vocab=vocab, bs=64,
                                    backwards=True) if backwards else forward_data)
        if args.gradual and not backwards:
            start = time.perf_counter()
            ember.seed(0)
            classifier = ember.learner(data, model=text_classifier(data, pretrained=encoder_file),
                                       quiet=True)
            fine_tune_classifier(classifier, epochs=max(epochs, 4))
            gradual = classifier.validate()["accuracy"]
            gradual_seconds = time.perf_counter() - start
            add_row(rows, ["ULMFiT 3a: forward classifier, gradual unfreezing",
                           f"{gradual:.4f}", f"{gradual_seconds:.1f}"])
        for seed in range(args.cls_seeds):
            start = time.perf_counter()
            ember.seed(seed)
            model = text_classifier(data, pretrained=encoder_file, drop_mult=args.drop_mult,
                                    pool_layers=args.pool_layers)
            direct = ember.learner(data, model=model, quiet=True)
            direct.fit_one_cycle(epochs, args.cls_lr)
            direct_accuracy = direct.validate()["accuracy"]
            seconds = time.perf_counter() - start
            stage_seconds += seconds
            classifiers.append(direct)
            add_row(rows, [f"ULMFiT 3b: {name} classifier, pretrained encoder, all layers "
                           f"one-cycle ({epochs} ep., pooling {args.pool_layers} layer"
                           f"{'s' if args.pool_layers == 'all' else ''}"
                           f"{f', seed {seed}' if args.cls_seeds > 1 else ''})",
                           f"{direct_accuracy:.4f}", f"{seconds:.1f}"])
        encoder_file.unlink(missing_ok=True)
    if len(classifiers) > 1:
        start = time.perf_counter()
        probs, targets = average_preds(classifiers)
        ulmfit = float((probs.argmax(dim=1) == targets).float().mean())
        seconds = time.perf_counter() - start
        stage_seconds += seconds
        add_row(rows, [f"ULMFiT 4: ensemble of the {len(classifiers)} classifiers above "
                       f"(mean probabilities)", f"{ulmfit:.4f}", f"{seconds:.1f}"])
    else:
        ulmfit = direct_accuracy
    if gradual > ulmfit and len(classifiers) == 1:  # --gradual, one direction, one seed
        ulmfit, stage_seconds = gradual, stage_seconds - seconds + gradual_seconds
    total = stage_seconds
    stages = ("every stage above" if len(classifiers) > 1 else "stages 1, 2, 3b")
    add_row(rows, [f"ULMFiT total ({stages})", f"{ulmfit:.4f}", f"{total:.1f}"])
    add_row(rows, ["majority class", f"{majority:.4f}", "-"])

    print(f"Rotten Tomatoes, {len(train)} train / {len(valid)} valid reviews split by movie"
          f"{' (smoke: bundled sample)' if smoke else ''}; vocab {len(vocab)}; "
          f"torch threads {args.threads}\n")
    print(table(["model", "valid accuracy", "seconds"], rows))
    print("\n" + throughput_title)
    print(throughput_table)
    print(f"\nLM sample: {sample!r}\n")
    baseline = reference.get("tfidf_word", majority)
    print(f"RESULT text_scratch_accuracy {scratch:.4f} accuracy baseline={baseline:.4f}")
    print(f"RESULT text_ulmfit_accuracy {ulmfit:.4f} accuracy "
          f"baseline={reference.get('tfidf_word_char', majority):.4f}")
    print(f"RESULT text_ulmfit_seconds {total:.1f} s baseline=1200")
    for line in results:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

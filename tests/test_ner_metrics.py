"""NER scores: agreement with seqeval (strict IOB2), first-piece word mapping, token macro F1."""

import json
import random

import numpy as np
import pytest
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from modelzoo.data.labels import UNTYPED_ENTITY, LabelVocab
from modelzoo.metrics import (
    evaluate_examples,
    first_piece_words,
    score_tags,
    word_tags,
)

TYPED = ["O", "B-Chemical", "I-Chemical", "B-PER", "I-PER", "B-LOC", "I-LOC"]
UNTYPED = ["O", "B", "I"]


def random_sentences(rng: random.Random, labels: list[str], num_sentences: int) -> list[list[str]]:
    """Tag sequences with every kind of transition, invalid ones included (I after O, I-X after B-Y)."""
    return [[rng.choice(labels) for _ in range(rng.randint(1, 15))] for _ in range(num_sentences)]


def assert_matches_seqeval(gold: list[list[str]], pred: list[list[str]]) -> None:
    ours = score_tags(gold, pred)
    ref = classification_report(gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    ref_types = {("ENTITY" if name == "_" else name): v for name, v in ref.items() if not name.endswith(" avg")}
    assert set(ours.per_type) == set(ref_types)
    pairs = [(ours.overall, ref["micro avg"])] + [(ours.per_type[name], v) for name, v in ref_types.items()]
    for score, expected in pairs:
        assert score.precision == pytest.approx(expected["precision"], abs=1e-12)
        assert score.recall == pytest.approx(expected["recall"], abs=1e-12)
        assert score.f1 == pytest.approx(expected["f1-score"], abs=1e-12)
        assert score.support == expected["support"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # seqeval's macro average of an empty type list
@pytest.mark.parametrize("labels", [TYPED, UNTYPED], ids=["typed", "untyped"])
def test_entity_scores_match_seqeval_strict_on_random_tags(labels):
    rng = random.Random(1234)
    for _ in range(150):
        gold = random_sentences(rng, labels, rng.randint(1, 6))
        # Predictions: mostly the gold tags, some words flipped, so that matches and misses both occur.
        pred = [[rng.choice(labels) if rng.random() < 0.3 else tag for tag in s] for s in gold]
        assert_matches_seqeval(gold, pred)


def test_strict_iob2_rules_on_hand_made_cases():
    gold = [["B-A", "I-A", "O", "B-B"], ["I-A", "I-A", "B-A", "I-B"]]
    pred = [["B-A", "I-A", "I-A", "B-B"], ["B-A", "I-A", "B-A", "O"]]
    scores = score_tags(gold, pred)
    # gold entities: A(0:2), B(3:4) | A(2:3) (the leading I-A run and the I-B are no entities)
    # pred entities: A(0:3), B(3:4) | A(0:2), A(2:3)
    assert scores.per_type["A"].support == 2 and scores.per_type["A"].predicted == 3
    assert scores.per_type["A"].correct == 1
    assert scores.per_type["B"].correct == 1 and scores.per_type["B"].support == 1
    assert scores.overall.precision == pytest.approx(2 / 4)
    assert scores.overall.recall == pytest.approx(2 / 3)
    assert_matches_seqeval(gold, pred)


def test_untyped_labels_form_one_entity_type():
    scores = score_tags([["B", "I", "O", "B"]], [["B", "I", "O", "O"]])
    assert list(scores.per_type) == [UNTYPED_ENTITY]
    assert (scores.overall.correct, scores.overall.predicted, scores.overall.support) == (1, 1, 2)


def test_entities_do_not_cross_sentences():
    # Concatenated, "B-A | I-A" would be one entity; per sentence it is B-A, then a stray I-A.
    scores = score_tags([["O", "B-A"], ["I-A", "O"]], [["O", "B-A"], ["B-A", "O"]])
    assert scores.overall.support == 1 and scores.overall.predicted == 2 and scores.overall.correct == 1


def test_non_iob2_label_is_rejected():
    with pytest.raises(ValueError, match="'E-PER' is not IOB2"):
        LabelVocab.from_labels(["O", "B-PER", "E-PER"])


# --- first-piece mapping -------------------------------------------------------------------------

ID_TO_LABEL = ["[PAD]", "B", "I", "O", "X", "[CLS]", "[SEP]"]
PAD, BEG, INS, OUT, X, CLS, SEP = range(7)


def split_sentence_examples():
    """Sentence 0 (5 words) split over examples 0 and 2, sentence 1 (3 words) in example 1.

    Continuation pieces carry predictions that must be ignored; example 1 predicts [SEP] at a
    word's first piece, which must count as O.
    """
    word_index = np.array([
        [-1, 0, 0, 1, 2, 2, -1, -1],   # sentence 0, words 0-2 (words 0 and 2 have two pieces)
        [-1, 0, 1, 1, 2, -1, -1, -1],  # sentence 1, words 0-2
        [-1, 3, 4, 4, 4, -1, -1, -1],  # sentence 0, words 3-4
    ])
    sentence_index = np.array([0, 1, 0])
    labels = np.array([
        [CLS, BEG, X, INS, OUT, X, SEP, PAD],
        [CLS, OUT, BEG, X, INS, SEP, PAD, PAD],
        [CLS, BEG, INS, X, X, SEP, PAD, PAD],
    ])
    predictions = np.array([
        [OUT, BEG, BEG, INS, OUT, BEG, OUT, OUT],
        [OUT, OUT, BEG, OUT, SEP, OUT, BEG, BEG],
        [OUT, BEG, OUT, BEG, BEG, OUT, OUT, OUT],
    ])
    return predictions, word_index, sentence_index, labels


def test_word_tags_use_each_words_first_piece_across_split_examples():
    gold, pred = word_tags(*split_sentence_examples(), ID_TO_LABEL)
    assert gold == [["B", "I", "O", "B", "I"], ["O", "B", "I"]]
    assert pred == [["B", "I", "O", "B", "O"], ["O", "B", "O"]]


def test_scores_of_examples_match_seqeval_on_the_mapped_words():
    examples = split_sentence_examples()
    gold, pred = word_tags(*examples, ID_TO_LABEL)
    scores = evaluate_examples(*examples, ID_TO_LABEL, words_per_sentence=[5, 3])
    assert scores.num_sentences == 2 and scores.num_words == 8
    assert scores.overall == score_tags(gold, pred).overall
    assert_matches_seqeval(gold, pred)


def test_packed_tokens_flattened_by_the_caller_score_like_padded_examples():
    predictions, word_index, sentence_index, labels = split_sentence_examples()
    # Pack examples 0 and 1 into one row, as a packed batch would; the caller flattens per token.
    pack_sentence = np.array([0] * 7 + [1] * 6)
    pack_word = np.concatenate([word_index[0, :7], word_index[1, :6]])
    pack_gold = np.concatenate([labels[0, :7], labels[1, :6]])
    pack_pred = np.concatenate([predictions[0, :7], predictions[1, :6]])
    rest = [np.full(8, 0), word_index[2], labels[2], predictions[2]]
    words = first_piece_words(
        *(np.concatenate([packed, other]) for packed, other in zip(
            [pack_sentence, pack_word, pack_gold, pack_pred], rest, strict=True
        ))
    )
    assert words.sentence_ids.tolist() == [0, 1]
    assert words.gold.tolist() == [BEG, INS, OUT, BEG, INS, OUT, BEG, INS]
    assert words.pred.tolist() == [BEG, INS, OUT, BEG, OUT, OUT, BEG, SEP]


def test_a_dropped_word_is_an_error():
    predictions, word_index, sentence_index, labels = split_sentence_examples()
    with pytest.raises(ValueError, match="sentence 0: word 0 has no token"):
        evaluate_examples(predictions[1:], word_index[1:], sentence_index[1:], labels[1:], ID_TO_LABEL)
    # Losing sentence 0's last words leaves no gap: only the raw file's word counts can tell.
    with pytest.raises(ValueError, match="sentence 0: 3 words found, the raw file has 5"):
        evaluate_examples(
            predictions[:2], word_index[:2], sentence_index[:2], labels[:2], ID_TO_LABEL, words_per_sentence=[5, 3]
        )
    with pytest.raises(ValueError, match="1 sentences have no tokens at all, the first is sentence 2"):
        evaluate_examples(*split_sentence_examples(), ID_TO_LABEL, words_per_sentence=[5, 3, 4])
    with pytest.raises(ValueError, match="sentence 1 is beyond the 1 sentences"):
        evaluate_examples(*split_sentence_examples(), ID_TO_LABEL, words_per_sentence=[5])


# --- token-level macro F1 ------------------------------------------------------------------------


def test_token_macro_f1_by_hand():
    gold = [["B-A", "I-A", "O", "B-B", "O"]]
    pred = [["B-A", "B-A", "O", "B-B", "I-B"]]
    scores = score_tags(gold, pred)
    # B-A: tp 1, predicted 2, gold 1 -> P 1/2, R 1 -> F1 2/3.  I-A: tp 0 -> 0.
    # B-B: tp 1, predicted 1, gold 1 -> 1.                     I-B: predicted 1, gold 0 -> 0.
    assert scores.token_f1_per_label == pytest.approx({"B-A": 2 / 3, "I-A": 0.0, "B-B": 1.0, "I-B": 0.0})
    assert scores.token_macro_f1 == pytest.approx((2 / 3 + 1) / 4)


def test_token_macro_f1_averages_every_b_i_label_of_the_vocabulary():
    scores = evaluate_examples(*split_sentence_examples(), ID_TO_LABEL)
    # Words: gold B I O B I | O B I ; pred B I O B O | O B O ([SEP] at a first piece is just "not I").
    # B: tp 3 of 3 -> 1.  I: tp 1, predicted 1, gold 3 -> P 1, R 1/3 -> F1 1/2.
    assert scores.token_f1_per_label == pytest.approx({"B": 1.0, "I": 0.5})
    assert scores.token_macro_f1 == pytest.approx(0.75)


def test_result_is_json_serialisable_and_prints_a_table():
    scores = score_tags([["B-Chemical", "O", "B-PER"]], [["B-Chemical", "O", "O"]])
    restored = json.loads(json.dumps(scores.to_dict()))
    assert restored["overall"]["recall"] == 0.5
    assert restored["per_type"]["Chemical"]["f1"] == 1.0
    table = scores.format_table()
    assert "Chemical" in table and "PER" in table and "overall (micro)" in table
    assert "token macro F1 over 2 B/I labels" in table

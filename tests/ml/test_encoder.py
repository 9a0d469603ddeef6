"""Layer 3's sentence encoders: the shipped static one, ONNX directories, and the heads that
record which encoder they were trained on."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dmr.errors import NotAvailableError
from dmr.ml.encoder import DEFAULT_ENCODER, EncoderUnavailable, OnnxEncoder, StaticEncoder, default_encoder, \
    load_encoder
from dmr.layers.embedding import DEFAULT_HEAD
from dmr.ml.features import DENSE_NAMES
from dmr.ml.head import HeadFormatError, NgramHead
from dmr.ml.train import Example, train_head
from dmr.router import Router


def cosine(a, b):
    return float(a @ b)


def test_the_shipped_encoder_loads_offline_and_gives_unit_vectors():
    enc = default_encoder()
    assert isinstance(enc, StaticEncoder) and enc.dim == 128
    out = enc.encode(["Write a poem about the sea", "Prove that there are infinitely many primes", "hola"])
    assert out.shape == (3, 128) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    # The same text gives the same vector, in a batch or alone.
    assert np.allclose(enc.encode(["hola"])[0], out[2], atol=1e-6)


def test_the_shipped_encoder_places_paraphrases_closer_than_unrelated_tasks():
    a, b, c = default_encoder().encode(["Write a short poem about the ocean",
                                        "Compose a little verse about the sea",
                                        "Fix the null pointer exception in this Java method"])
    assert cosine(a, b) > cosine(a, c) + 0.2


def test_odd_input_never_crashes_the_encoder():
    enc = default_encoder()
    out = enc.encode(["", "\x00\x01\ufffd", "🙂" * 50, "x" * 200_000, "日本語のテキストです"])
    assert out.shape == (5, enc.dim) and np.isfinite(out).all()
    assert not out[0].any()  # nothing to encode: a zero vector, not NaN


def test_a_batch_reads_each_text_as_it_is_read_alone_and_the_word_memo_stays_bounded(monkeypatch):
    import dmr.ml.encoder as encoder_module

    enc = default_encoder()
    monkeypatch.setattr(encoder_module, "_WORD_CACHE", 8)
    monkeypatch.setattr(encoder_module, "_BATCH", 2)  # three tokenizer calls, one of them on an empty text
    many_words = " ".join(f"word{i}" for i in range(60))
    texts = ["", "a\ud800b lone surrogate", many_words, "日本語のテキストです", "x " * 5000, "Write a poem"]
    alone = np.stack([enc.mean_rows([t])[0] for t in texts])
    assert np.array_equal(enc.mean_rows(texts), alone)
    assert not alone[0].any() and alone[1:].any(axis=1).all()
    enc._words.clear()
    enc.token_ids(many_words)
    assert 0 < len(enc._words) <= 8


def test_the_shipped_table_stays_in_half_precision_and_gives_the_widened_tables_features():
    # Stored as float16, the table is kept so (7.5 MB, not 15): rows are widened as they are read.
    enc = StaticEncoder(DEFAULT_ENCODER)
    assert enc.table.dtype == np.float16
    texts = ["Write a poem about the sea", "Prove that there are infinitely many primes", "hola", ""]
    wide = enc.table.astype(np.float32)
    for batch in (texts, texts[:1]):
        got = enc.mean_rows(batch)
        assert got.dtype == np.float32 and np.array_equal(got, enc.mean_rows(batch, wide))
    # A head folds its weights into the table a block of rows at a time, as if it were widened whole.
    head = NgramHead.load(DEFAULT_HEAD)
    head.embedding_logits(["hola"])
    weights = head.dense_weights_[len(DENSE_NAMES):]
    assert np.allclose(head.folded_, (head.encoder.table.astype(np.float32) @ weights) * head.embedding_scale,
                       rtol=1e-5, atol=1e-7)


def test_the_shipped_artefacts_fit_the_size_budget_and_record_their_source():
    size = sum(p.stat().st_size for p in DEFAULT_ENCODER.iterdir())
    assert size < 20e6
    source = (DEFAULT_ENCODER / "SOURCE.md").read_text(encoding="utf-8")
    assert "all-MiniLM-L6-v2" in source and "Apache-2.0" in source and "scripts/build_encoder.py" in source


@pytest.fixture
def encoder_copy(tmp_path):
    target = tmp_path / "enc"
    shutil.copytree(DEFAULT_ENCODER, target)
    return target


def test_a_truncated_table_is_refused_with_the_reason(encoder_copy):
    data = (encoder_copy / "embeddings.npz").read_bytes()
    (encoder_copy / "embeddings.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(EncoderUnavailable, match="cannot read static encoder"):
        StaticEncoder(encoder_copy)


def test_a_pickled_table_is_never_unpickled(encoder_copy):
    np.savez(encoder_copy / "embeddings.npz", embeddings=np.array([{"x": 1}], dtype=object))
    with pytest.raises(EncoderUnavailable, match="cannot read static encoder"):
        StaticEncoder(encoder_copy)


def test_a_missing_tokenizer_is_reported(encoder_copy):
    (encoder_copy / "tokenizer.json").unlink()
    with pytest.raises(EncoderUnavailable, match="tokenizer file missing"):
        StaticEncoder(encoder_copy)


def test_a_model_name_is_never_downloaded():
    pytest.importorskip("tokenizers")
    try:
        import sentence_transformers  # noqa: F401
        pytest.skip("sentence-transformers installed: a cached model name could load")  # pragma: no cover
    except ImportError:
        pass
    with pytest.raises(EncoderUnavailable, match="never downloads"):
        load_encoder("BAAI/bge-large-en-v1.5")
    with pytest.raises(NotAvailableError, match="layer3_embedding_model"):
        Router(layer3_embedding_model="BAAI/bge-large-en-v1.5")


# -- ONNX ----------------------------------------------------------------------------------------

DIM = 8


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    """A real ONNX model run by onnxruntime: token embeddings looked up from a table (a
    transformer with no attention layers), with the shipped tokenizer."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    vocab = json.loads((DEFAULT_ENCODER / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    rng = np.random.default_rng(0)
    table = rng.normal(size=(max(vocab.values()) + 1, DIM)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["last_hidden_state"], axis=0)], "lookup",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", DIM])],
        [numpy_helper.from_array(table, "table")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    directory = tmp_path_factory.mktemp("onnx-encoder")
    onnx.save(model, str(directory / "model.onnx"))
    shutil.copy(DEFAULT_ENCODER / "tokenizer.json", directory / "tokenizer.json")
    return directory, table


def test_an_onnx_directory_is_mean_pooled_over_the_attention_mask(onnx_dir):
    directory, table = onnx_dir
    enc = load_encoder(directory)
    assert isinstance(enc, OnnxEncoder) and enc.dim == DIM
    texts = ["short", "a somewhat longer task about databases"]
    out = enc.encode(texts)
    for text, row in zip(texts, out):
        ids = enc.tokenizer.encode(text).ids
        expected = table[ids].mean(axis=0)
        assert np.allclose(row, expected / np.linalg.norm(expected), atol=1e-5)


def test_a_directory_without_an_encoder_is_refused(tmp_path):
    with pytest.raises(EncoderUnavailable, match="holds no encoder"):
        load_encoder(tmp_path)


def _examples():
    code = ["Write a Python function that {}", "Implement in Rust a routine that {}", "Refactor this code so it {}"]
    prose = ["Write a short poem that {}", "Compose a cheerful song that {}", "Draft a limerick that {}"]
    what = ["sorts a list", "parses dates", "merges two maps", "talks about rain", "counts words",
            "greets a friend", "reverses text", "describes autumn"]
    rows = [Example(t.format(w), "code_creation", "standard") for t in code for w in what]
    rows += [Example(t.format(w), "doc_creation", "simple") for t in prose for w in what]
    return rows


def test_a_head_trained_on_an_encoder_runs_only_with_that_encoder(onnx_dir, tmp_path):
    directory, _ = onnx_dir
    enc = load_encoder(directory)
    head, _ = train_head(_examples(), encoder=enc, calibration_folds=0, max_iter=60)
    path = head.save(tmp_path / "onnx-head.npz")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["encoder"]["fingerprint"] == enc.fingerprint and meta["encoder"]["dim"] == DIM
    assert NgramHead.load(path, enc).dense_weights_.shape[0] == head.dense_weights_.shape[0]
    # Without the encoder it was trained on (the default is the static one), it refuses.
    with pytest.raises(HeadFormatError, match="was trained on encoder"):
        NgramHead.load(path)
    router = Router(layer3_embedding_model=str(directory), layer3_head=str(path), layer2_enabled=False)
    decision = router.classify("Implement in Rust a routine that merges two maps")
    assert decision.task_type == "code_creation"
    # The shipped head was not trained on this encoder: asking for it alone is a clear error.
    with pytest.raises(NotAvailableError, match="train a head"):
        Router(layer3_embedding_model=str(directory))


def test_the_shipped_head_records_the_shipped_encoder():
    from dmr.layers.embedding import DEFAULT_HEAD

    meta = json.loads(DEFAULT_HEAD.with_suffix(".json").read_text(encoding="utf-8"))
    if meta.get("encoder") is None:
        pytest.fail("the shipped head should use the shipped encoder")
    assert meta["encoder"]["fingerprint"] == default_encoder().fingerprint


def test_dmr_train_with_an_encoder_directory_writes_a_head_for_it(onnx_dir, tmp_path):
    from click.testing import CliRunner

    import dmr.cli.ml  # noqa: F401  # attaches `train` to `cli`
    from dmr.cli.main import cli

    directory, _ = onnx_dir
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps({"task": f"{e.task} #{k}", "task_type": e.task_type,
                                          "complexity": e.complexity})
                              for k in range(3) for e in _examples()) + "\n", encoding="utf-8")
    out = tmp_path / "head.npz"
    result = CliRunner().invoke(cli, ["train", "--data", str(data), "--encoder", str(directory), "--output", str(out),
                                      "--max-iter", "40"])
    assert result.exit_code == 0, result.output
    assert f"layer3_embedding_model={str(directory)!r}" in result.stdout
    assert json.loads(out.with_suffix(".json").read_text())["encoder"]["kind"] == "onnx"
    none = CliRunner().invoke(cli, ["train", "--data", str(data), "--encoder", "none", "--output",
                                    str(tmp_path / "plain.npz"), "--max-iter", "40"])
    assert none.exit_code == 0, none.output
    assert json.loads((tmp_path / "plain.json").read_text())["encoder"] is None
    missing = CliRunner().invoke(cli, ["train", "--data", str(data), "--encoder", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "is not a local directory" in missing.output


def test_a_broken_shipped_encoder_makes_layer3_pass_with_the_reason(encoder_copy, monkeypatch):
    """The default Router keeps deciding (with Layer 1) and says why Layer 3 passed; doctor warns."""
    import dmr.layers.embedding as embedding
    import dmr.ml.encoder as encoder_module
    from dmr.doctor import _layer3

    data = (encoder_copy / "embeddings.npz").read_bytes()
    (encoder_copy / "embeddings.npz").write_bytes(data[:1000])
    monkeypatch.setattr(encoder_module, "DEFAULT_ENCODER", encoder_copy)
    monkeypatch.setattr(encoder_module, "_CACHE", {})
    monkeypatch.setattr(embedding, "_HEADS", {})
    decision = Router(escalation_threshold=1.0).classify("Refactor this module to use dependency injection")
    step = next(s for s in decision.trace if s.layer == "layer3")
    assert step.outcome == "passed" and "encoder" in step.detail and "cannot read static encoder" in step.detail
    assert decision.layer == "layer1"
    check = _layer3(None)
    assert check.status == "WARN" and "encoder" in check.detail

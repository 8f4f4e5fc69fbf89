"""Tokenizers vs llama.cpp (llama-cpp-python's tokenize), id for id: Gemma's SentencePiece-style
vocabulary and byte-level BPE vocabularies with the Llama 3 and Qwen2 pre-tokenizers."""
from __future__ import annotations

import pytest

llama_cpp = pytest.importorskip("llama_cpp")
import _llm_models as tiny  # noqa: E402

CORPUS = [
    "Hello world", "  leading spaces", "trailing spaces   ", "tabs\tand\nnewlines\n\n\n", "mixed\r\nCRLF\r\n",
    "unicode: café naïve Ωmega Ärger straße", "emoji 🙂👍🏽 family 👨‍👩‍👧 flags 🇫🇷",
    "CJK 你好世界 日本語のテキスト 한국어 텍스트", "code: def f(x):\n    return x**2  # comment\n\tpass",
    "numbers 1234567 3.14159 1e-9 0x1F", "it's don't WE'LL I'M they've", "   ", "a" * 60, "",
    "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", "<|endoftext|> special <bos>",
    "html <div class=\"x\">&amp;</div>", "العربية עברית हिन्दी ไทย", "\u00a0nbsp\u2003em space",
]


def _check(ref, ours, add_bos=True):
    for special in (False, True):
        for text in CORPUS:
            expected = ref.tokenize(text.encode(), add_bos=add_bos, special=special)
            assert ours.encode(text, add_bos, special) == expected, (text, special)


def test_gemma_spm_matches_llama_cpp():
    from enigma_edge import _core
    from enigma_edge.models import default_model_path

    path = str(default_model_path())
    ref = llama_cpp.Llama(path, vocab_only=True, verbose=False)
    ours = _core.Tokenizer.from_file(path)
    assert ours.kind == "spm"
    _check(ref, ours)
    _check(ref, ours, add_bos=False)


@pytest.mark.parametrize("pre,arch", [("qwen2", "qwen2"), ("llama-bpe", "llama")])
def test_bpe_matches_llama_cpp(tmp_path, pre, arch):
    from enigma_edge import _core

    path = tiny.write_tiny(tmp_path / f"{pre}.gguf", arch, "F32", tiny.bpe_vocab(pre), n_layer=1)
    ref = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    ours = _core.Tokenizer.from_file(str(path))
    assert ours.kind == "bpe"
    _check(ref, ours)


def test_detokenize_roundtrip_and_utf8_split():
    from enigma_edge import _core
    from enigma_edge.models import default_model_path

    t = _core.Tokenizer.from_file(str(default_model_path()))
    for text in CORPUS[:13]:
        assert t.decode(t.encode(text, False, False)).decode("utf-8") == text
    # an emoji Gemma has no token for is spelled with byte tokens: pieces are partial UTF-8
    ids = t.encode("\U0001FAE8", False, False)
    pieces = [t.piece(i) for i in ids]
    assert b"".join(pieces).decode("utf-8") == "\U0001FAE8"
    if len(ids) > 1:
        with pytest.raises(UnicodeDecodeError):
            pieces[0].decode("utf-8")


def test_unsupported_tokenizer_is_a_clear_error(tmp_path):
    from enigma_edge import _core

    voc = tiny.bpe_vocab("qwen2")
    voc["pre"] = "falcon"
    path = tiny.write_tiny(tmp_path / "f.gguf", "qwen2", "F32", voc, n_layer=1)
    with pytest.raises(RuntimeError, match="pre-tokenizer 'falcon'"):
        _core.Tokenizer.from_file(str(path))

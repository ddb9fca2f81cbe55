from asr.text import TextNormalizer, normalize_text


def test_default_normalisation_drops_case_punctuation_and_noise():
    assert normalize_text("Hello, World! It's <NOISE> 'quoted'.") == "hello world it's quoted"


def test_normaliser_options_are_independent():
    keep_case = TextNormalizer(lowercase=False, remove_punctuation=False, noise_tokens=())
    assert keep_case("A, <noise> b") == "A, <noise> b"

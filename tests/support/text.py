"""Hypothesis strategies for the text clients send: what services accept, and what they refuse."""

from hypothesis import strategies as st

SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
CONTROLS = st.sampled_from(
    [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if chr(c) not in "\t\n\r"]
)
REFUSED = st.one_of(SURROGATES, CONTROLS)
# Text a shop or a viewer may write: anything printable, emoji and line breaks included.
TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"), include_characters="\t\n\r"),
    max_size=40,
)


@st.composite
def spoiled(draw: st.DrawFn) -> str:
    """Text with at least one refused character (a lone surrogate or a control) somewhere."""
    before, after = draw(TEXT), draw(TEXT)
    return before + draw(REFUSED) + after

import DeciJSON
import Testing

/// The quoting both writers share must stay serde_json's: safetensors headers are compared byte for
/// byte with the reference writer's, and PNG parameters must parse back.
@Suite("JSON string quoting")
struct JSONQuotingTests {
    @Test("Quotes, backslashes and the named control escapes")
    func namedEscapes() {
        #expect(jsonQuoted("a\"b\\c") == #""a\"b\\c""#)
        #expect(jsonQuoted("\u{08}\u{0C}\n\r\t") == #""\b\f\n\r\t""#)
    }

    @Test("Other control characters as lowercase \\u00xx; slash and non-ASCII as they are")
    func otherCharacters() {
        #expect(jsonQuoted("\u{00}\u{1F}\u{1b}") == #""\u0000\u001f\u001b""#)
        #expect(jsonQuoted("a/b é ✓ \u{7F}") == "\"a/b é ✓ \u{7F}\"")
        #expect(jsonQuoted("") == "\"\"")
    }
}

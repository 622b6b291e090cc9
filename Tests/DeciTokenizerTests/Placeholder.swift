import Testing

@Test func placeholder_DeciTokenizerTests() { #expect(true) }

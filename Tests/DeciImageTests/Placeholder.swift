import Testing

@Test func placeholder_DeciImageTests() { #expect(true) }

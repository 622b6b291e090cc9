import Testing

@Test func placeholder_DeciSchedulersTests() { #expect(true) }

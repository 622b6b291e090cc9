import Testing

@Test func placeholder_DeciRandomTests() { #expect(true) }

import Testing

@Test func placeholder_DeciWeightsTests() { #expect(true) }

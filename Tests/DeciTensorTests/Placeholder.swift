import Testing

@Test func placeholder_DeciTensorTests() { #expect(true) }

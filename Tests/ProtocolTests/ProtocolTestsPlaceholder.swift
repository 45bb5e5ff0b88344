import Testing

@Test func ProtocolTestsPlaceholder() { #expect(Bool(true)) }

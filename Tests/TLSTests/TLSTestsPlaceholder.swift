import Testing

@Test func TLSTestsPlaceholder() { #expect(Bool(true)) }
